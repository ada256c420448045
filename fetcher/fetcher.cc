#include "fetcher/fetcher.h"

#include <fnmatch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "fetcher/cache_layout.h"
#include "fetcher/download.h"
#include "fetcher/hub_api.h"

namespace llama::fetch {
namespace fs = std::filesystem;
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

bool MatchesAny(const std::vector<std::string>& patterns, const std::string& path) {
  for (std::string p : patterns) {
    if (absl::EndsWith(p, "/")) p += "*";
    if (::fnmatch(p.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

// Thread-safe progress aggregation with a throttled callback.
class ProgressTracker {
 public:
  ProgressTracker(const FetchOptions& o, const std::vector<RepoFile>& files)
      : cb_(o.on_progress), interval_(std::chrono::milliseconds(o.progress_interval_ms)) {
    for (const auto& f : files) {
      p_.files.push_back({f.path, 0, f.size});
      p_.total += f.size;
    }
    p_.files_total = static_cast<int>(files.size());
  }

  void Set(size_t i, int64_t done) {
    std::lock_guard<std::mutex> l(mu_);
    FileProgress& fp = p_.files[i];
    done = std::min(done, fp.total);
    p_.done += done - fp.done;
    fp.done = done;
    MaybeEmitLocked(false);
  }

  void FileDone(size_t i) {
    std::lock_guard<std::mutex> l(mu_);
    FileProgress& fp = p_.files[i];
    p_.done += fp.total - fp.done;
    fp.done = fp.total;
    ++p_.files_done;
    MaybeEmitLocked(false);
  }

  void Final() {
    std::lock_guard<std::mutex> l(mu_);
    MaybeEmitLocked(true);
  }

 private:
  void MaybeEmitLocked(bool force) {
    if (!cb_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && emitted_ && now - last_ < interval_) return;
    emitted_ = true;
    last_ = now;
    cb_(p_);
  }

  std::mutex mu_;
  std::function<void(const Progress&)> cb_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool emitted_ = false;
  Progress p_;
};

int CountSnapshotFiles(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (fs::is_regular_file(it->path(), ec2)) ++n;  // follows symlinks
  }
  return n;
}

absl::StatusOr<std::string> CachedCommit(const RepoCache& c, const std::string& repo_id,
                                         const std::string& revision) {
  std::string commit = revision;
  if (!IsCommitHash(revision)) {
    absl::StatusOr<std::string> ref = ReadRef(c, revision);
    if (!ref.ok()) {
      if (!absl::IsNotFound(ref.status())) return ref.status();
      return absl::NotFoundError(absl::StrFormat(
          "revision '%s' of repo '%s' is not in the cache at %s", revision, repo_id,
          c.repo_dir));
    }
    commit = *ref;
  }
  std::error_code ec;
  if (!fs::is_directory(c.SnapshotDir(commit), ec)) {
    return absl::NotFoundError(absl::StrFormat(
        "revision '%s' (commit %s) of repo '%s' has no snapshot in the cache at %s", revision,
        commit, repo_id, c.repo_dir));
  }
  return commit;
}

// Fetches one file into the cache and links it into the snapshot.
absl::Status FetchOne(const FetchOptions& o, const RepoCache& c, const std::string& repo_id,
                      const std::string& revision, const std::string& commit,
                      const RepoFile& f, ProgressTracker& tracker, size_t index,
                      int64_t* bytes) {
  Where where{repo_id, revision, f.path};
  const std::string blob = c.BlobPath(f.etag());
  if (FileSizeOrMinus1(blob) >= 0) {
    if (!SnapshotFileIsLinked(c, commit, f.path, f.etag())) {
      if (absl::Status s = LinkSnapshotFile(c, commit, f.path, f.etag()); !s.ok()) return s;
    }
    tracker.FileDone(index);
    return absl::OkStatus();
  }
  absl::StatusOr<FileLock> lock = FileLock::Acquire(c.LockPath(f.etag()));
  if (!lock.ok()) return lock.status();
  if (FileSizeOrMinus1(blob) < 0) {  // another fetcher may have finished it meanwhile
    absl::StatusOr<FileMeta> meta = HeadFile(o, repo_id, revision, commit, f.path);
    if (!meta.ok()) return meta.status();
    if (meta->etag != f.etag() || (meta->size >= 0 && meta->size != f.size)) {
      return absl::DataLossError(absl::StrFormat(
          "file '%s' of repo '%s' at revision '%s': the hub's metadata (etag %s, size %d) "
          "disagrees with its listing (etag %s, size %d)",
          f.path, repo_id, revision, meta->etag, meta->size, f.etag(), f.size));
    }
    absl::Status s = DownloadBlob(
        o, c, f, meta->location, where,
        [&tracker, index](int64_t done) { tracker.Set(index, done); }, bytes);
    if (!s.ok()) return s;
  }
  if (absl::Status s = LinkSnapshotFile(c, commit, f.path, f.etag()); !s.ok()) return s;
  tracker.FileDone(index);
  return absl::OkStatus();
}

}  // namespace

FetchOptions FetchOptions::FromEnv() {
  FetchOptions o;
  o.endpoint = Env("HF_ENDPOINT");
  if (o.endpoint.empty()) o.endpoint = "https://huggingface.co";
  while (absl::EndsWith(o.endpoint, "/")) o.endpoint.pop_back();
  std::string home = Env("HOME");
  std::string hf_home = Env("HF_HOME");
  if (hf_home.empty()) {
    std::string xdg = Env("XDG_CACHE_HOME");
    hf_home = (xdg.empty() ? home + "/.cache" : xdg) + "/huggingface";
  }
  o.cache_dir = Env("HF_HUB_CACHE");
  if (o.cache_dir.empty()) o.cache_dir = hf_home + "/hub";
  o.token = std::string(absl::StripAsciiWhitespace(Env("HF_TOKEN")));
  if (o.token.empty()) {
    std::string path = Env("HF_TOKEN_PATH");
    o.token = ReadTokenFile(path.empty() ? hf_home + "/token" : path);
  }
  std::string off = absl::AsciiStrToUpper(Env("HF_HUB_OFFLINE"));
  o.offline = off == "1" || off == "ON" || off == "YES" || off == "TRUE";
  return o;
}

absl::StatusOr<FetchResult> CachedSnapshot(const std::string& repo_id,
                                           const std::string& revision,
                                           const FetchOptions& opts) {
  if (absl::Status s = ValidateRevision(revision); !s.ok()) return s;
  absl::StatusOr<RepoCache> c = MakeRepoCache(opts.cache_dir, repo_id);
  if (!c.ok()) return c.status();
  absl::StatusOr<std::string> commit = CachedCommit(*c, repo_id, revision);
  if (!commit.ok()) return commit.status();
  FetchResult r;
  r.repo_id = repo_id;
  r.revision = revision;
  r.commit = *commit;
  r.snapshot_dir = c->SnapshotDir(*commit);
  r.files = CountSnapshotFiles(r.snapshot_dir);
  return r;
}

absl::StatusOr<FetchResult> FetchRepo(const std::string& repo_id, const std::string& revision,
                                      const FetchOptions& opts) {
  if (absl::Status s = ValidateRepoId(repo_id); !s.ok()) return s;
  if (absl::Status s = ValidateRevision(revision); !s.ok()) return s;
  if (opts.offline) {
    absl::StatusOr<FetchResult> r = CachedSnapshot(repo_id, revision, opts);
    if (absl::IsNotFound(r.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "offline mode (HF_HUB_OFFLINE): ", r.status().message()));
    }
    return r;
  }
  if (opts.endpoint.empty()) return absl::InvalidArgumentError("no hub endpoint configured");
  absl::StatusOr<RepoCache> cache = MakeRepoCache(opts.cache_dir, repo_id);
  if (!cache.ok()) return cache.status();
  const RepoCache& c = *cache;

  // Internal abort flag: set on the first failure or when the caller cancels.
  std::atomic<bool> abort{false};
  FetchOptions o = opts;
  o.cancel = &abort;
  std::atomic<bool> finished{false};
  std::thread watcher;
  if (opts.cancel != nullptr) {
    watcher = std::thread([&] {
      while (!finished.load()) {
        if (opts.cancel->load()) abort.store(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  struct Join {
    std::atomic<bool>& finished;
    std::thread& t;
    ~Join() {
      finished.store(true);
      if (t.joinable()) t.join();
    }
  } join{finished, watcher};

  absl::StatusOr<std::string> commit = ResolveCommit(o, repo_id, revision);
  if (!commit.ok()) return commit.status();
  absl::StatusOr<std::vector<RepoFile>> listed = ListFiles(o, repo_id, revision, *commit);
  if (!listed.ok()) return listed.status();
  std::vector<RepoFile> files;
  for (auto& f : *listed) {
    if (!opts.allow_patterns.empty() && !MatchesAny(opts.allow_patterns, f.path)) continue;
    if (MatchesAny(opts.ignore_patterns, f.path)) continue;
    files.push_back(std::move(f));
  }

  // Free-disk check before anything is written.
  int64_t need = 0;
  for (const auto& f : files) {
    if (FileSizeOrMinus1(c.BlobPath(f.etag())) >= 0) continue;
    need += f.size - std::max<int64_t>(0, FileSizeOrMinus1(c.IncompletePath(f.etag())));
  }
  if (need > 0) {
    absl::StatusOr<int64_t> avail = AvailableBytes(c.repo_dir);
    if (!avail.ok()) return avail.status();
    if (*avail < need + opts.disk_reserve_bytes) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "no space left for repo '%s' at revision '%s': %d bytes to download plus a "
          "%d-byte reserve, but only %d bytes are free under %s",
          repo_id, revision, need, opts.disk_reserve_bytes, *avail, c.cache_dir));
    }
  }
  // snapshots/{commit} appears only with its first verified file (LinkSnapshotFile).
  for (const std::string& d : {c.blobs, c.refs}) {
    if (absl::Status s = MakeDirs(d); !s.ok()) return s;
  }

  ProgressTracker tracker(o, files);
  std::mutex mu;
  absl::Status first_error;
  int64_t bytes = 0;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    int64_t local_bytes = 0;
    while (!abort.load()) {
      size_t i = next.fetch_add(1);
      if (i >= files.size()) break;
      absl::Status s = FetchOne(o, c, repo_id, revision, *commit, files[i], tracker, i,
                                &local_bytes);
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        if (first_error.ok() || (absl::IsCancelled(first_error) && !absl::IsCancelled(s))) {
          first_error = s;
        }
        abort.store(true);
      }
    }
    std::lock_guard<std::mutex> l(mu);
    bytes += local_bytes;
  };
  int n = std::max(1, std::min<int>(opts.parallel, static_cast<int>(files.size())));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (opts.cancel && opts.cancel->load()) {
    return absl::CancelledError(absl::StrFormat("fetch of repo '%s' at revision '%s' cancelled",
                                                repo_id, revision));
  }
  if (!first_error.ok()) return first_error;

  if (revision != *commit) {
    if (absl::Status s = WriteRef(c, revision, *commit); !s.ok()) return s;
  }
  tracker.Final();
  FetchResult r;
  r.repo_id = repo_id;
  r.revision = revision;
  r.commit = *commit;
  r.snapshot_dir = c.SnapshotDir(*commit);
  r.bytes_downloaded = bytes;
  r.files = static_cast<int>(files.size());
  return r;
}

absl::Status DeleteRevision(const std::string& repo_id, const std::string& revision,
                            const FetchOptions& opts) {
  if (absl::Status s = ValidateRevision(revision); !s.ok()) return s;
  absl::StatusOr<RepoCache> cache = MakeRepoCache(opts.cache_dir, repo_id);
  if (!cache.ok()) return cache.status();
  const RepoCache& c = *cache;
  absl::StatusOr<std::string> commit = CachedCommit(c, repo_id, revision);
  if (!commit.ok()) return commit.status();

  auto blobs_of = [](const std::string& dir, std::set<std::string>* out) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code ec2;
      if (it->is_symlink(ec2)) {
        out->insert(fs::read_symlink(it->path(), ec2).filename().string());
      }
    }
  };
  std::set<std::string> candidates, keep;
  blobs_of(c.SnapshotDir(*commit), &candidates);
  std::error_code ec;
  fs::remove_all(c.SnapshotDir(*commit), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot remove snapshot ", c.SnapshotDir(*commit),
                                            ": ", ec.message()));
  }
  // Refs that point at the removed commit.
  std::vector<fs::path> stale_refs;
  for (auto it = fs::recursive_directory_iterator(c.refs, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    std::string rel = fs::relative(it->path(), c.refs, ec2).string();
    absl::StatusOr<std::string> ref = ReadRef(c, rel);
    if (ref.ok() && *ref == *commit) stale_refs.push_back(it->path());
  }
  for (const auto& p : stale_refs) {
    std::error_code ec2;
    fs::remove(p, ec2);
  }
  ec.clear();
  for (const auto& snap : fs::directory_iterator(c.snapshots, ec)) {
    blobs_of(snap.path().string(), &keep);
  }
  for (const auto& b : candidates) {
    if (keep.count(b) || b.empty()) continue;
    std::error_code ec2;
    fs::remove(c.BlobPath(b), ec2);
  }
  return absl::OkStatus();
}

}  // namespace llama::fetch
