// The official huggingface_hub cache layout and the file-system primitives the fetcher
// needs on it: folder names, path safety, refs, snapshot links, blob locks, hashing.
//
//   {cache}/models--{org}--{name}/blobs/{etag}
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path} -> ../../blobs/{etag}
//   {cache}/models--{org}--{name}/refs/{revision}          (commit, no trailing newline)
//   {cache}/.locks/models--{org}--{name}/{etag}.lock
#ifndef LLAMA_FETCHER_CACHE_LAYOUT_H_
#define LLAMA_FETCHER_CACHE_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llama::fetch {

struct RepoCache {
  std::string cache_dir;  // the hub cache root
  std::string repo_dir;   // {cache}/models--org--name
  std::string blobs, snapshots, refs, locks;

  std::string BlobPath(const std::string& etag) const { return blobs + "/" + etag; }
  std::string IncompletePath(const std::string& etag) const {
    return blobs + "/" + etag + ".incomplete";
  }
  std::string LockPath(const std::string& etag) const { return locks + "/" + etag + ".lock"; }
  std::string SnapshotDir(const std::string& commit) const { return snapshots + "/" + commit; }
};

// Checks "org/name" or "name" with the hub's allowed characters.
absl::Status ValidateRepoId(const std::string& repo_id);
// Checks a revision name (branch, tag, commit): no "..", no leading "/", printable.
absl::Status ValidateRevision(const std::string& revision);
// Rejects listing paths that are empty, absolute, or contain "." / ".." / empty segments.
absl::Status ValidateRepoPath(const std::string& repo_id, const std::string& revision,
                              const std::string& path);
bool IsCommitHash(const std::string& revision);

absl::StatusOr<RepoCache> MakeRepoCache(const std::string& cache_dir, const std::string& repo_id);

// mkdir -p.
absl::Status MakeDirs(const std::string& dir);

// refs/{revision} := commit (no trailing newline), written via temp file + rename.
absl::Status WriteRef(const RepoCache& c, const std::string& revision, const std::string& commit);
// NotFound when the ref does not exist.
absl::StatusOr<std::string> ReadRef(const RepoCache& c, const std::string& revision);

// Makes snapshots/{commit}/{path} point at blobs/{etag} with a relative symlink (temp link
// + rename, so it appears atomically); copies the blob when symlinks are not supported.
absl::Status LinkSnapshotFile(const RepoCache& c, const std::string& commit,
                              const std::string& path, const std::string& etag);
// True when snapshots/{commit}/{path} exists and resolves to blobs/{etag} (or is a copy of
// the right size when the blob exists as a regular file there).
bool SnapshotFileIsLinked(const RepoCache& c, const std::string& commit,
                          const std::string& path, const std::string& etag);

// Exclusive advisory lock (flock) on a lock file, released on destruction.
class FileLock {
 public:
  static absl::StatusOr<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Lower-case hex digests of a file's content.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);
// Git blob id: sha1("blob {size}\0" + content).
absl::StatusOr<std::string> GitBlobSha1OfFile(const std::string& path);

// Bytes available to unprivileged users on the file system holding `path` (or its nearest
// existing ancestor).
absl::StatusOr<int64_t> AvailableBytes(const std::string& path);

// Size of a regular file, or -1 when it does not exist.
int64_t FileSizeOrMinus1(const std::string& path);

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_CACHE_LAYOUT_H_
