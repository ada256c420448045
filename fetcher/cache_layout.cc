#include "fetcher/cache_layout.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace llama::fetch {
namespace fs = std::filesystem;
namespace {

// Unique temp-file suffix across threads and processes.
std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(".tmp.", ::getpid(), ".", counter++);
}

absl::Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(absl::StrCat("no space left on device: ", msg));
  }
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

bool ValidName(absl::string_view s) {
  if (s.empty() || s.size() > 96 || s == "." || s == "..") return false;
  for (char ch : s) {
    if (!(absl::ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.')) return false;
  }
  return !absl::StartsWith(s, "--") && !absl::StrContains(s, "..");
}

absl::StatusOr<std::string> DigestFile(const std::string& path, const EVP_MD* md,
                                       const std::string& prefix) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                             EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), md, nullptr);
  if (!prefix.empty()) EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus("cannot read", path, err);
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += absl::StrFormat("%02x", out[i]);
  return hex;
}

}  // namespace

absl::Status ValidateRepoId(const std::string& repo_id) {
  std::vector<absl::string_view> parts = absl::StrSplit(repo_id, '/');
  bool ok = !parts.empty() && parts.size() <= 2;
  for (auto p : parts) ok = ok && ValidName(p);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "invalid repo id '%s': expected 'org/name' with letters, digits, '-', '_', '.'",
        repo_id));
  }
  return absl::OkStatus();
}

absl::Status ValidateRevision(const std::string& revision) {
  bool ok = !revision.empty() && revision.size() <= 256 && revision.front() != '/' &&
            !absl::StrContains(revision, "..") && !absl::StrContains(revision, "//") &&
            revision.back() != '/';
  for (char ch : revision) ok = ok && ch > ' ' && ch != 0x7f && ch != '\\';
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("invalid revision '", revision, "'"));
  return absl::OkStatus();
}

absl::Status ValidateRepoPath(const std::string& repo_id, const std::string& revision,
                              const std::string& path) {
  bool ok = !path.empty() && path.front() != '/' && path.find('\\') == std::string::npos &&
            path.find('\0') == std::string::npos;
  if (ok) {
    for (auto seg : absl::StrSplit(path, '/')) {
      if (seg.empty() || seg == "." || seg == "..") ok = false;
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unsafe path '%s' in the file listing of %s at revision %s: it would escape the "
        "snapshot directory; refusing to fetch",
        path, repo_id, revision));
  }
  return absl::OkStatus();
}

bool IsCommitHash(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (char ch : revision) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<RepoCache> MakeRepoCache(const std::string& cache_dir,
                                        const std::string& repo_id) {
  if (absl::Status s = ValidateRepoId(repo_id); !s.ok()) return s;
  if (cache_dir.empty()) return absl::InvalidArgumentError("empty cache directory");
  std::string folder = absl::StrCat("models--", absl::StrReplaceAll(repo_id, {{"/", "--"}}));
  RepoCache c;
  c.cache_dir = cache_dir;
  c.repo_dir = absl::StrCat(cache_dir, "/", folder);
  c.blobs = c.repo_dir + "/blobs";
  c.snapshots = c.repo_dir + "/snapshots";
  c.refs = c.repo_dir + "/refs";
  c.locks = absl::StrCat(cache_dir, "/.locks/", folder);
  return c;
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus("cannot create directory", dir, ec.value());
  return absl::OkStatus();
}

absl::Status WriteRef(const RepoCache& c, const std::string& revision,
                      const std::string& commit) {
  if (absl::Status s = ValidateRevision(revision); !s.ok()) return s;
  std::string path = c.refs + "/" + revision;
  if (absl::Status s = MakeDirs(fs::path(path).parent_path().string()); !s.ok()) return s;
  std::string tmp = path + TempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot write ref", tmp, errno);
  ssize_t n = ::write(fd, commit.data(), commit.size());
  int err = errno;
  if (n != static_cast<ssize_t>(commit.size()) || ::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot write ref", tmp, n < 0 ? err : ENOSPC);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot rename ref into place", path, e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRef(const RepoCache& c, const std::string& revision) {
  if (absl::Status s = ValidateRevision(revision); !s.ok()) return s;
  std::string path = c.refs + "/" + revision;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("no cached ref ", path));
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  std::string s(buf, n > 0 ? n : 0);
  s = std::string(absl::StripAsciiWhitespace(s));
  if (!IsCommitHash(s)) {
    return absl::DataLossError(absl::StrCat("ref file ", path, " does not hold a commit hash"));
  }
  return s;
}

absl::Status LinkSnapshotFile(const RepoCache& c, const std::string& commit,
                              const std::string& path, const std::string& etag) {
  fs::path dst = fs::path(c.SnapshotDir(commit)) / path;
  if (absl::Status s = MakeDirs(dst.parent_path().string()); !s.ok()) return s;
  // ../../blobs/{etag}, with one more ../ per directory level of `path`.
  std::string target = "../../";
  for (char ch : path) {
    if (ch == '/') target += "../";
  }
  target += "blobs/" + etag;
  std::string tmp = dst.string() + TempSuffix();
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0) {
    // No symlink support: copy the verified blob, then rename into place.
    std::error_code ec;
    fs::copy_file(c.BlobPath(etag), tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) return ErrnoStatus("cannot copy blob into snapshot", dst.string(), ec.value());
  }
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot place snapshot file", dst.string(), e);
  }
  return absl::OkStatus();
}

bool SnapshotFileIsLinked(const RepoCache& c, const std::string& commit,
                          const std::string& path, const std::string& etag) {
  fs::path dst = fs::path(c.SnapshotDir(commit)) / path;
  std::error_code ec;
  auto st = fs::symlink_status(dst, ec);
  if (ec) return false;
  std::string blob = c.BlobPath(etag);
  if (fs::is_symlink(st)) {
    return fs::equivalent(dst, blob, ec) && !ec;
  }
  if (fs::is_regular_file(st)) {  // copy fallback
    return FileSizeOrMinus1(dst.string()) == FileSizeOrMinus1(blob) &&
           FileSizeOrMinus1(blob) >= 0;
  }
  return false;
}

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path) {
  if (absl::Status s = MakeDirs(fs::path(path).parent_path().string()); !s.ok()) return s;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot open lock file", path, errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int e = errno;
      ::close(fd);
      return ErrnoStatus("cannot lock", path, e);
    }
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  return DigestFile(path, EVP_sha256(), "");
}

absl::StatusOr<std::string> GitBlobSha1OfFile(const std::string& path) {
  int64_t size = FileSizeOrMinus1(path);
  if (size < 0) return absl::NotFoundError(absl::StrCat("no file ", path));
  std::string prefix = absl::StrCat("blob ", size);
  prefix.push_back('\0');
  return DigestFile(path, EVP_sha1(), prefix);
}

absl::StatusOr<int64_t> AvailableBytes(const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  if (p.empty()) p = ".";
  struct statvfs st;
  if (::statvfs(p.c_str(), &st) != 0) return ErrnoStatus("statvfs", p.string(), errno);
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

int64_t FileSizeOrMinus1(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return st.st_size;
}

}  // namespace llama::fetch
