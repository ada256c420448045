// Hub HTTP API as the official huggingface_hub client uses it: revision -> commit,
// recursive tree listing with Link pagination, per-file HEAD metadata; error mapping
// and the retry/backoff policy shared with the downloader.
#ifndef LLAMA_FETCHER_HUB_API_H_
#define LLAMA_FETCHER_HUB_API_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fetcher/fetcher.h"
#include "fetcher/http.h"

namespace llama::fetch {

// What a failure is about, for error messages.
struct Where {
  std::string repo_id, revision, file;
};

// One file of a repo listing.
struct RepoFile {
  std::string path;
  int64_t size = 0;
  std::string oid;     // git blob sha1 (of the LFS pointer for LFS files)
  bool lfs = false;
  std::string sha256;  // lfs.oid
  // The blob name in the cache (the hub's ETag): sha256 for LFS, git sha1 otherwise.
  const std::string& etag() const { return lfs ? sha256 : oid; }
};

struct FileMeta {
  std::string commit;    // X-Repo-Commit
  std::string etag;      // X-Linked-Etag or ETag, without W/ and quotes
  int64_t size = -1;     // X-Linked-Size or Content-Length
  std::string location;  // where to GET the bytes (Location, else the resolve URL)
};

// Maps a non-2xx hub response to a typed status naming repo, revision and file.
absl::Status HubError(const HttpResponse& r, const Where& where, const std::string& url);

// Whether a status code is worth retrying (429, 5xx, 408).
bool IsRetryableHttp(long status);
// Backoff before retry number `attempt` (0-based), honouring Retry-After when present.
int BackoffMs(const FetchOptions& o, int attempt, const HttpResponse* r);
// Sleeps, returning false early when opts.cancel is set.
bool SleepCancellable(const FetchOptions& o, int ms);
// Request headers for the hub (auth, identity encoding), given the target URL.
std::vector<std::string> HubHeaders(const FetchOptions& o, const std::string& url);
// Fills the common request fields (timeouts, UA, cancel) from options.
HttpRequest MakeRequest(const FetchOptions& o, const std::string& method,
                        const std::string& url);

// GET/HEAD with retries on network errors, 429 and 5xx. Returns the final response for
// any other status (the caller maps 4xx); exhausted retries give ResourceExhausted (429)
// or Unavailable.
absl::StatusOr<HttpResponse> RequestWithRetries(const FetchOptions& o, const HttpRequest& req,
                                                const Where& where);

// GET {endpoint}/api/models/{repo}/revision/{rev} -> sha. Returns `revision` itself when it
// is already a 40-hex commit.
absl::StatusOr<std::string> ResolveCommit(const FetchOptions& o, const std::string& repo_id,
                                          const std::string& revision);

// GET {endpoint}/api/models/{repo}/tree/{commit}?recursive=true, following Link rel="next".
// Only "file" entries are returned; every path is validated (no escaping the repo dir).
absl::StatusOr<std::vector<RepoFile>> ListFiles(const FetchOptions& o, const std::string& repo_id,
                                                const std::string& revision,
                                                const std::string& commit);

// HEAD {endpoint}/{repo}/resolve/{commit}/{path} without following redirects.
absl::StatusOr<FileMeta> HeadFile(const FetchOptions& o, const std::string& repo_id,
                                  const std::string& revision, const std::string& commit,
                                  const std::string& path);

std::string ResolveUrlFor(const FetchOptions& o, const std::string& repo_id,
                          const std::string& commit, const std::string& path);

// Extracts the rel="next" URL from a Link header ("" when none).
std::string NextLink(const std::string& link_header);
// Strips a weak-validator prefix and quotes from an ETag value.
std::string NormalizeEtag(const std::string& etag);

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_HUB_API_H_
