// Downloads one file into blobs/{etag}.incomplete with resume (Range: bytes=N-), verifies
// size and hash, and renames it to blobs/{etag}. The caller holds the blob's lock.
#ifndef LLAMA_FETCHER_DOWNLOAD_H_
#define LLAMA_FETCHER_DOWNLOAD_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "fetcher/cache_layout.h"
#include "fetcher/fetcher.h"
#include "fetcher/hub_api.h"

namespace llama::fetch {

// Called with the number of verified-or-pending bytes of this file on disk.
using FileProgressFn = std::function<void(int64_t file_done)>;

// Verifies a complete file against the listing: size, then sha256 (LFS) or git blob sha1.
absl::Status VerifyBlobFile(const std::string& path, const RepoFile& f, const Where& where);

// Downloads `f` from `url` (the resolved Location) into the cache. `bytes_received` is
// increased by every body byte received. Retries network errors, 429/5xx (honouring
// Retry-After) and corrupt downloads up to opts.max_retries times.
absl::Status DownloadBlob(const FetchOptions& o, const RepoCache& c, const RepoFile& f,
                          const std::string& url, const Where& where,
                          const FileProgressFn& progress, int64_t* bytes_received);

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_DOWNLOAD_H_
