#include "fetcher/hub_api.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fetcher/cache_layout.h"
#include "nlohmann/json.hpp"

namespace llama::fetch {
namespace {

std::string Describe(const Where& w) {
  std::string s = absl::StrCat("repo '", w.repo_id, "'");
  if (!w.revision.empty()) absl::StrAppend(&s, ", revision '", w.revision, "'");
  if (!w.file.empty()) absl::StrAppend(&s, ", file '", w.file, "'");
  return s;
}

std::string EncodePath(const std::string& path) {
  std::vector<std::string> segs;
  for (auto seg : absl::StrSplit(path, '/')) segs.push_back(UrlEncode(std::string(seg)));
  return absl::StrJoin(segs, "/");
}

std::string ModelApi(const FetchOptions& o, const std::string& repo_id) {
  return absl::StrCat(absl::StripSuffix(o.endpoint, "/"), "/api/models/", repo_id);
}

}  // namespace

std::string NormalizeEtag(const std::string& etag) {
  absl::string_view s = absl::StripAsciiWhitespace(etag);
  absl::ConsumePrefix(&s, "W/");
  absl::ConsumePrefix(&s, "\"");
  absl::ConsumeSuffix(&s, "\"");
  return std::string(s);
}

std::string NextLink(const std::string& link_header) {
  // <https://...>; rel="next", <...>; rel="prev"
  for (auto part : absl::StrSplit(link_header, ',')) {
    absl::string_view p = absl::StripAsciiWhitespace(part);
    size_t lt = p.find('<'), gt = p.find('>');
    if (lt == absl::string_view::npos || gt == absl::string_view::npos || gt < lt) continue;
    std::string params = absl::AsciiStrToLower(p.substr(gt + 1));
    if (absl::StrContains(params, "rel=\"next\"") || absl::StrContains(params, "rel=next")) {
      return std::string(p.substr(lt + 1, gt - lt - 1));
    }
  }
  return "";
}

absl::Status HubError(const HttpResponse& r, const Where& w, const std::string& url) {
  std::string code = r.Header("x-error-code");
  std::string msg = r.Header("x-error-message");
  std::string detail = msg.empty() ? "" : absl::StrCat(" (hub says: ", msg, ")");
  std::string what = Describe(w);
  if (code == "GatedRepo") {
    if (r.status == 403) {
      return absl::PermissionDeniedError(absl::StrCat(
          what, ": the repository is gated and the token lacks access; request access on "
          "the hub page, then retry", detail));
    }
    return absl::UnauthenticatedError(absl::StrCat(
        what, ": the repository is gated; a token is needed (set HF_TOKEN or HF_TOKEN_PATH) "
        "from an account that was granted access", detail));
  }
  if (code == "RepoNotFound") {
    return absl::NotFoundError(absl::StrCat(
        "repository '", w.repo_id, "' not found at ", url,
        " (if it is private, set HF_TOKEN)", detail));
  }
  if (code == "RevisionNotFound") {
    return absl::NotFoundError(absl::StrCat("revision '", w.revision,
                                            "' not found in repository '", w.repo_id, "'",
                                            detail));
  }
  if (code == "EntryNotFound") {
    return absl::NotFoundError(absl::StrCat("file '", w.file, "' not found in repository '",
                                            w.repo_id, "' at revision '", w.revision, "'",
                                            detail));
  }
  switch (r.status) {
    case 401:
      return absl::UnauthenticatedError(absl::StrCat(
          what, ": HTTP 401, a token is needed or the token is invalid (set HF_TOKEN)",
          detail));
    case 403:
      return absl::PermissionDeniedError(absl::StrCat(
          what, ": HTTP 403, the token lacks access to this repository", detail));
    case 404:
      return absl::NotFoundError(absl::StrCat(what, ": HTTP 404 at ", url, detail));
    case 416:
      return absl::OutOfRangeError(absl::StrCat(what, ": HTTP 416 range not satisfiable"));
    case 429:
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": rate limited by the hub (HTTP 429) after retries", detail));
    default:
      break;
  }
  if (r.status >= 500) {
    return absl::UnavailableError(
        absl::StrFormat("%s: hub error HTTP %d at %s after retries%s", what, r.status, url,
                        detail));
  }
  return absl::UnknownError(
      absl::StrFormat("%s: unexpected HTTP %d at %s%s", what, r.status, url, detail));
}

bool IsRetryableHttp(long status) { return status == 429 || status == 408 || status >= 500; }

int BackoffMs(const FetchOptions& o, int attempt, const HttpResponse* r) {
  if (r != nullptr) {
    int secs = 0;
    if (absl::SimpleAtoi(r->Header("retry-after"), &secs) && secs >= 0) {
      return std::min(secs, 300) * 1000;
    }
  }
  int64_t ms = static_cast<int64_t>(std::max(1, o.backoff_initial_ms)) << std::min(attempt, 20);
  return static_cast<int>(std::min<int64_t>(ms, std::max(1, o.backoff_max_ms)));
}

bool SleepCancellable(const FetchOptions& o, int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    if (o.cancel && o.cancel->load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
  return !(o.cancel && o.cancel->load());
}

std::vector<std::string> HubHeaders(const FetchOptions& o, const std::string& url) {
  std::vector<std::string> h = {"Accept-Encoding: identity"};
  // The token only goes to the hub itself, never to a CDN on another origin.
  if (!o.token.empty() && UrlOrigin(url) == UrlOrigin(o.endpoint)) {
    h.push_back("Authorization: Bearer " + o.token);
  }
  return h;
}

HttpRequest MakeRequest(const FetchOptions& o, const std::string& method,
                        const std::string& url) {
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.headers = HubHeaders(o, url);
  req.connect_timeout_s = o.connect_timeout_s;
  req.stall_timeout_s = o.stall_timeout_s;
  req.user_agent = o.user_agent;
  req.cancel = o.cancel;
  return req;
}

absl::StatusOr<HttpResponse> RequestWithRetries(const FetchOptions& o, const HttpRequest& req,
                                                const Where& where) {
  absl::Status last = absl::OkStatus();
  HttpResponse last_resp;
  int attempts = std::max(1, o.max_retries + 1);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (o.cancel && o.cancel->load()) return absl::CancelledError("fetch cancelled");
    absl::StatusOr<HttpResponse> r = Perform(req);
    const HttpResponse* for_backoff = nullptr;
    if (!r.ok()) {
      if (absl::IsCancelled(r.status())) return r.status();
      last = r.status();
    } else if (IsRetryableHttp(r->status)) {
      last_resp = *r;
      last = HubError(*r, where, req.url);
      for_backoff = &last_resp;
    } else {
      return r;
    }
    if (attempt + 1 < attempts && !SleepCancellable(o, BackoffMs(o, attempt, for_backoff))) {
      return absl::CancelledError("fetch cancelled");
    }
  }
  if (last_resp.status == 429) return HubError(last_resp, where, req.url);
  return absl::Status(last.code(), absl::StrCat(Describe(where), ": giving up after ",
                                                attempts, " attempts: ", last.message()));
}

absl::StatusOr<std::string> ResolveCommit(const FetchOptions& o, const std::string& repo_id,
                                          const std::string& revision) {
  if (IsCommitHash(revision)) return revision;
  std::string url = absl::StrCat(ModelApi(o, repo_id), "/revision/", UrlEncode(revision));
  Where where{repo_id, revision, ""};
  absl::StatusOr<HttpResponse> r = RequestWithRetries(o, MakeRequest(o, "GET", url), where);
  if (!r.ok()) return r.status();
  if (r->status != 200) return HubError(*r, where, url);
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() ||
      !IsCommitHash(j["sha"].get<std::string>())) {
    return absl::DataLossError(absl::StrCat("repo '", repo_id, "', revision '", revision,
                                            "': the revision API at ", url,
                                            " returned no commit sha"));
  }
  return j["sha"].get<std::string>();
}

absl::StatusOr<std::vector<RepoFile>> ListFiles(const FetchOptions& o, const std::string& repo_id,
                                                const std::string& revision,
                                                const std::string& commit) {
  std::vector<RepoFile> files;
  Where where{repo_id, revision, ""};
  std::string url = absl::StrCat(ModelApi(o, repo_id), "/tree/", UrlEncode(commit),
                                 "?recursive=true");
  for (int page = 0; !url.empty(); ++page) {
    if (page > 100000) return absl::InternalError("tree listing does not end");
    absl::StatusOr<HttpResponse> r = RequestWithRetries(o, MakeRequest(o, "GET", url), where);
    if (!r.ok()) return r.status();
    if (r->status != 200) return HubError(*r, where, url);
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_array()) {
      return absl::DataLossError(absl::StrCat("repo '", repo_id, "', revision '", revision,
                                              "': the tree listing at ", url,
                                              " is not a JSON array"));
    }
    for (const auto& e : j) {
      if (!e.is_object() || e.value("type", "") != "file") continue;
      RepoFile f;
      f.path = e.value("path", "");
      if (absl::Status s = ValidateRepoPath(repo_id, revision, f.path); !s.ok()) return s;
      f.size = e.value("size", int64_t{0});
      f.oid = e.value("oid", "");
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.lfs = true;
        f.sha256 = e["lfs"].value("oid", "");
        f.size = e["lfs"].value("size", f.size);
      }
      const std::string& tag = f.etag();
      bool hex_ok = !tag.empty() && std::all_of(tag.begin(), tag.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
      });
      if (!hex_ok || f.size < 0) {
        return absl::DataLossError(absl::StrCat("repo '", repo_id, "', revision '", revision,
                                                "', file '", f.path,
                                                "': listing has no valid oid/size"));
      }
      files.push_back(std::move(f));
    }
    std::string next = NextLink(r->Header("link"));
    url = next.empty() ? "" : ResolveUrl(url, next);
  }
  return files;
}

std::string ResolveUrlFor(const FetchOptions& o, const std::string& repo_id,
                          const std::string& commit, const std::string& path) {
  return absl::StrCat(absl::StripSuffix(o.endpoint, "/"), "/", repo_id, "/resolve/",
                      UrlEncode(commit), "/", EncodePath(path));
}

absl::StatusOr<FileMeta> HeadFile(const FetchOptions& o, const std::string& repo_id,
                                  const std::string& revision, const std::string& commit,
                                  const std::string& path) {
  std::string url = ResolveUrlFor(o, repo_id, commit, path);
  Where where{repo_id, revision, path};
  HttpRequest req = MakeRequest(o, "HEAD", url);
  absl::StatusOr<HttpResponse> r;
  for (int hop = 0; hop < 5; ++hop) {
    r = RequestWithRetries(o, req, where);
    if (!r.ok()) return r.status();
    // Follow only relative redirects (renamed repos); an absolute one is the CDN.
    std::string loc = r->Header("location");
    if (r->status >= 300 && r->status < 400 && absl::StartsWith(loc, "/") &&
        !absl::StartsWith(loc, "//")) {
      req.url = ResolveUrl(req.url, loc);
      req.headers = HubHeaders(o, req.url);
      continue;
    }
    break;
  }
  if (r->status < 200 || r->status >= 400) return HubError(*r, where, url);
  FileMeta m;
  m.commit = r->Header("x-repo-commit");
  std::string etag = r->Header("x-linked-etag");
  if (etag.empty()) etag = r->Header("etag");
  m.etag = NormalizeEtag(etag);
  std::string size = r->Header("x-linked-size");
  if (size.empty()) size = r->Header("content-length");
  if (!absl::SimpleAtoi(size, &m.size)) m.size = -1;
  std::string loc = r->Header("location");
  m.location = loc.empty() ? req.url : ResolveUrl(req.url, loc);
  if (m.etag.empty()) {
    return absl::DataLossError(absl::StrCat(Describe(where), ": HEAD ", url,
                                            " returned no ETag; cannot verify the file"));
  }
  return m;
}

}  // namespace llama::fetch
