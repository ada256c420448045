// Hugging Face Hub branch fetcher: downloads one revision of a model repo into the
// official huggingface_hub cache layout (models--org--name/{blobs,snapshots,refs}),
// over libcurl, with resume, verification, retries and typed errors.
//
// Standalone: no dependency on the engine, CUDA or gRPC.
#ifndef LLAMA_FETCHER_FETCHER_H_
#define LLAMA_FETCHER_FETCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llama::fetch {

struct FileProgress {
  std::string path;  // repo-relative path
  int64_t done = 0, total = 0;
};

// Snapshot of a fetch's progress; `files` lists every file selected for the fetch.
struct Progress {
  std::vector<FileProgress> files;
  int64_t done = 0, total = 0;
  int files_done = 0, files_total = 0;
};

struct FetchOptions {
  std::string endpoint;   // default from HF_ENDPOINT, else "https://huggingface.co"
  std::string cache_dir;  // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  std::string token;      // HF_TOKEN, else file HF_TOKEN_PATH / $HF_HOME/token
  bool offline = false;   // HF_HUB_OFFLINE=1
  int parallel = 4;
  int max_retries = 5;
  std::vector<std::string> allow_patterns, ignore_patterns;  // fnmatch globs
  std::function<void(const Progress&)> on_progress;          // throttled
  const std::atomic<bool>* cancel = nullptr;

  // Extra bytes the free-disk check requires beyond the bytes still to download
  // (tests use a huge value to simulate a full disk). Default: 64 MiB headroom.
  int64_t disk_reserve_bytes = 64ll << 20;
  // Cap for the exponential retry backoff, and its first step (ms).
  int backoff_initial_ms = 200;
  int backoff_max_ms = 8000;
  // Minimum interval between on_progress calls (ms); the final call is always made.
  int progress_interval_ms = 100;
  // Per-request connect timeout and low-speed abort (seconds without progress).
  int connect_timeout_s = 20;
  int stall_timeout_s = 60;
  std::string user_agent = "llama-gptq-serve-fetch/1.0";

  static FetchOptions FromEnv();
};

struct FetchResult {
  std::string repo_id, revision, commit, snapshot_dir;
  int64_t bytes_downloaded = 0;  // bytes received over the network for file bodies
  int files = 0;                 // files in the snapshot selected by the patterns
};

// Resolves `revision` (branch, tag or 40-hex commit) of model repo `repo_id`, downloads
// every selected file into the cache and returns the snapshot directory.
// Errors: NotFound (repo / revision / entry), Unauthenticated / PermissionDenied (token
// missing or lacking access, gated repo), ResourceExhausted (429 after retries, or
// "no space left"), DataLoss (hash/size mismatch after retries), InvalidArgument
// (unsafe paths in the listing, bad repo id), Unavailable (network after retries),
// Cancelled (opts.cancel set), FailedPrecondition (offline and not cached).
absl::StatusOr<FetchResult> FetchRepo(const std::string& repo_id, const std::string& revision,
                                      const FetchOptions& opts);

// Local lookup only (no network): the snapshot dir of a cached revision, NotFound if absent.
absl::StatusOr<FetchResult> CachedSnapshot(const std::string& repo_id, const std::string& revision,
                                           const FetchOptions& opts);

// Removes a revision's snapshot + ref (and blobs no other snapshot references).
absl::Status DeleteRevision(const std::string& repo_id, const std::string& revision,
                            const FetchOptions& opts);

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_FETCHER_H_
