#include "fetcher/http.h"

#include <curl/curl.h>

#include <cctype>
#include <chrono>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace llama::fetch {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Ctx {
  const HttpRequest* req;
  HttpResponse* resp;
  bool sink_failed = false;
  bool stalled = false;
  curl_off_t last_now = -1;
  std::chrono::steady_clock::time_point last_change = std::chrono::steady_clock::now();
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ctx = static_cast<Ctx*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    // "HTTP/1.1 206 Partial Content": a new response (e.g. after a followed redirect).
    ctx->resp->headers.clear();
    size_t sp = line.find(' ');
    if (sp != absl::string_view::npos && line.size() >= sp + 4) {
      ctx->resp->status = std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return size * n;
  std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  ctx->resp->headers[name] = value;
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ctx = static_cast<Ctx*>(user);
  size_t len = size * n;
  // Bodies of 2xx responses go to the sink; error bodies are buffered for messages.
  long code = ctx->resp->status;
  if (ctx->req->sink && code >= 200 && code < 300) {
    if (!ctx->req->sink(*ctx->resp, data, len)) {
      ctx->sink_failed = true;
      return 0;  // aborts with CURLE_WRITE_ERROR
    }
  } else if (ctx->resp->body.size() < (64u << 20)) {
    ctx->resp->body.append(data, len);
  }
  ctx->resp->body_bytes += len;
  return len;
}

int OnXfer(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* ctx = static_cast<Ctx*>(user);
  if (ctx->req->cancel && ctx->req->cancel->load()) return 1;
  // Stall detection: no byte for stall_timeout_s (curl's low-speed check is coarser).
  auto now = std::chrono::steady_clock::now();
  if (dlnow + ulnow != ctx->last_now) {
    ctx->last_now = dlnow + ulnow;
    ctx->last_change = now;
  } else if (now - ctx->last_change > std::chrono::seconds(ctx->req->stall_timeout_s)) {
    ctx->stalled = true;
    return 1;
  }
  return 0;
}

}  // namespace

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

absl::StatusOr<HttpResponse> Perform(const HttpRequest& req, HttpResponse* partial) {
  GlobalInit();
  HttpResponse resp;
  Ctx ctx{&req, &resp};
  CURL* h = curl_easy_init();
  if (h == nullptr) return absl::InternalError("curl_easy_init failed");
  struct curl_slist* hdrs = nullptr;
  for (const auto& line : req.headers) hdrs = curl_slist_append(hdrs, line.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(req.connect_timeout_s));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(2 * req.stall_timeout_s));
  if (!req.user_agent.empty()) curl_easy_setopt(h, CURLOPT_USERAGENT, req.user_agent.c_str());
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnXfer);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);

  CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0) resp.status = code;
  char* eff = nullptr;
  curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) resp.effective_url = eff;
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);

  if (rc == CURLE_OK) return resp;
  if (partial) *partial = resp;
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  if (rc == CURLE_ABORTED_BY_CALLBACK && ctx.stalled) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "no data for %d s on %s %s", req.stall_timeout_s, req.method, req.url));
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError("download cancelled");
  if (ctx.sink_failed && req.sink_error && !req.sink_error->ok()) return *req.sink_error;
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(absl::StrCat("timed out on ", req.url, ": ", detail));
  }
  return absl::UnavailableError(
      absl::StrFormat("network error on %s %s: %s (curl %d)", req.method, req.url, detail,
                      static_cast<int>(rc)));
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  return out;
}

std::string ResolveUrl(const std::string& base, const std::string& location) {
  if (absl::StrContains(location, "://")) return location;
  size_t scheme = base.find("://");
  size_t host_end = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string origin = host_end == std::string::npos ? base : base.substr(0, host_end);
  if (absl::StartsWith(location, "//")) return base.substr(0, scheme + 1) + location;
  if (absl::StartsWith(location, "/")) return origin + location;
  std::string path = host_end == std::string::npos ? "/" : base.substr(host_end);
  path = path.substr(0, path.find('?'));
  return origin + path.substr(0, path.rfind('/') + 1) + location;
}

std::string UrlOrigin(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  std::string scheme = absl::AsciiStrToLower(url.substr(0, scheme_end));
  size_t host_start = scheme_end + 3;
  size_t host_end = url.find_first_of("/?#", host_start);
  std::string host = absl::AsciiStrToLower(url.substr(host_start, host_end - host_start));
  size_t at = host.rfind('@');
  if (at != std::string::npos) host = host.substr(at + 1);
  if (host.find(':') == std::string::npos || host.back() == ']') {
    host += scheme == "https" ? ":443" : ":80";
  }
  return scheme + "://" + host;
}

}  // namespace llama::fetch
