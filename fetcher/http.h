// Thin libcurl wrapper: one blocking request, response headers parsed, body either
// buffered or streamed to a sink. No retries here (see hub_api / download).
#ifndef LLAMA_FETCHER_HTTP_H_
#define LLAMA_FETCHER_HTTP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llama::fetch {

struct HttpRequest {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool follow_redirects = false;
  int connect_timeout_s = 20;
  int stall_timeout_s = 60;  // abort when no byte arrives for this long
  std::string user_agent;
  const std::atomic<bool>* cancel = nullptr;
  // When set, 2xx response bodies go here instead of HttpResponse::body; `head` holds the
  // status and headers of the response the bytes belong to. Return false to abort the
  // transfer (e.g. a write error); `sink_error` then explains why.
  std::function<bool(const struct HttpResponse& head, const char* data, size_t n)> sink;
  absl::Status* sink_error = nullptr;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;                            // non-2xx bodies, or all when no sink
  std::string effective_url;
  int64_t body_bytes = 0;                      // bytes received (sink or body)

  std::string Header(const std::string& lower_name) const;
};

// Performs the request. A non-OK status means the transfer itself failed (network error,
// timeout, truncated body, cancelled, sink error); `partial` (if non-null) then holds what
// was learned (status, headers, bytes received before the failure).
// Codes: Cancelled, Unavailable (transport; retryable), DeadlineExceeded (stall), or the
// sink's status.
absl::StatusOr<HttpResponse> Perform(const HttpRequest& req, HttpResponse* partial = nullptr);

// Percent-encodes every byte outside [A-Za-z0-9-._~] ("/" included).
std::string UrlEncode(const std::string& s);

// Resolves `location` (absolute or relative) against `base`.
std::string ResolveUrl(const std::string& base, const std::string& location);

// "scheme://host:port" of a URL (port made explicit), for same-origin checks.
std::string UrlOrigin(const std::string& url);

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_HTTP_H_
