#include "fetcher/download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace llama::fetch {
namespace {

std::string Describe(const Where& w) {
  return absl::StrFormat("file '%s' of repo '%s' at revision '%s'", w.file, w.repo_id,
                         w.revision);
}

absl::Status WriteError(const std::string& path, const Where& w, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no space left on device while writing ", Describe(w), " to ", path));
  }
  return absl::InternalError(
      absl::StrCat("cannot write ", Describe(w), " to ", path, ": ", std::strerror(err)));
}

// Appends to the .incomplete file; decides on the first byte of each response whether
// the body continues the file (206 at the right offset) or replaces it (200).
struct Appender {
  int fd = -1;
  int64_t offset = 0;       // bytes on disk
  int64_t received = 0;     // body bytes received in this request
  bool started = false;
  bool bad_range = false;   // a 206 that does not start at `offset`
  absl::Status error;
  std::string path;
  const Where* where;
  const FileProgressFn* progress;

  bool Write(const HttpResponse& head, const char* data, size_t n) {
    if (!started) {
      started = true;
      if (head.status == 206) {
        std::string want = absl::StrCat("bytes ", offset, "-");
        if (!absl::StartsWith(head.Header("content-range"), want)) {
          bad_range = true;
          return false;
        }
      } else if (offset > 0) {  // 200: the server sends the whole file again
        if (::ftruncate(fd, 0) != 0) {
          error = WriteError(path, *where, errno);
          return false;
        }
        offset = 0;
      }
    }
    while (n > 0) {
      ssize_t w = ::write(fd, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error = WriteError(path, *where, errno);
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
      offset += w;
      received += w;
    }
    if (*progress) (*progress)(offset);
    return true;
  }
};

}  // namespace

absl::Status VerifyBlobFile(const std::string& path, const RepoFile& f, const Where& where) {
  int64_t size = FileSizeOrMinus1(path);
  if (size != f.size) {
    return absl::DataLossError(absl::StrFormat("%s: size %d, expected %d", Describe(where),
                                               size, f.size));
  }
  absl::StatusOr<std::string> got = f.lfs ? Sha256OfFile(path) : GitBlobSha1OfFile(path);
  if (!got.ok()) return got.status();
  if (*got != f.etag()) {
    return absl::DataLossError(absl::StrFormat("%s: %s mismatch (expected %s, got %s)",
                                               Describe(where), f.lfs ? "sha256" : "git sha1",
                                               f.etag(), *got));
  }
  return absl::OkStatus();
}

absl::Status DownloadBlob(const FetchOptions& o, const RepoCache& c, const RepoFile& f,
                          const std::string& url, const Where& where,
                          const FileProgressFn& progress, int64_t* bytes_received) {
  const std::string inc = c.IncompletePath(f.etag());
  const std::string blob = c.BlobPath(f.etag());
  const int max_attempts = std::max(1, o.max_retries + 1);
  int failures = 0, corrupt = 0, redirects = 0;
  std::string target = url;
  absl::Status last;
  while (true) {
    if (o.cancel && o.cancel->load()) return absl::CancelledError("fetch cancelled");
    int fd = ::open(inc.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return WriteError(inc, where, errno);
    struct stat st;
    ::fstat(fd, &st);
    int64_t offset = st.st_size;
    if (offset > f.size && ::ftruncate(fd, 0) == 0) offset = 0;
    if (offset == f.size) {
      ::fsync(fd);
      ::close(fd);
      absl::Status v = VerifyBlobFile(inc, f, where);
      if (v.ok()) {
        ::chmod(inc.c_str(), 0644);
        if (::rename(inc.c_str(), blob.c_str()) != 0) return WriteError(blob, where, errno);
        if (progress) progress(f.size);
        return absl::OkStatus();
      }
      ::truncate(inc.c_str(), 0);
      last = v;
      if (++corrupt >= max_attempts) {
        return absl::DataLossError(absl::StrCat(v.message(), "; still corrupt after ",
                                                corrupt, " downloads, giving up"));
      }
      continue;
    }
    if (progress) progress(offset);

    Appender app;
    app.fd = fd;
    app.offset = offset;
    app.path = inc;
    app.where = &where;
    app.progress = &progress;
    HttpRequest req = MakeRequest(o, "GET", target);
    if (offset > 0) req.headers.push_back(absl::StrCat("Range: bytes=", offset, "-"));
    req.sink = [&app](const HttpResponse& h, const char* d, size_t n) {
      return app.Write(h, d, n);
    };
    req.sink_error = &app.error;
    HttpResponse partial;
    absl::StatusOr<HttpResponse> r = Perform(req, &partial);
    ::close(fd);
    *bytes_received += app.received;
    if (!app.error.ok()) return app.error;
    if (absl::IsCancelled(r.status())) return r.status();

    const HttpResponse* resp = r.ok() ? &*r : nullptr;
    if (app.bad_range) {
      // Content-Range does not continue our file: start over from byte 0.
      ::truncate(inc.c_str(), 0);
      last = absl::DataLossError(absl::StrCat(Describe(where), ": server resumed at the wrong "
                                              "offset (", partial.Header("content-range"),
                                              ")"));
    } else if (!r.ok()) {
      last = r.status();  // network error or truncated body: resume from what we have
    } else if (resp->status >= 300 && resp->status < 400 && !resp->Header("location").empty()) {
      if (++redirects > 10) {
        return absl::InternalError(absl::StrCat(Describe(where), ": too many redirects"));
      }
      target = ResolveUrl(target, resp->Header("location"));  // auth dropped cross-origin
      continue;
    } else if (resp->status == 416) {
      ::truncate(inc.c_str(), 0);
      last = HubError(*resp, where, target);
    } else if (IsRetryableHttp(resp->status)) {
      last = HubError(*resp, where, target);
    } else if (resp->status != 200 && resp->status != 206) {
      return HubError(*resp, where, target);
    } else if (app.offset < f.size) {
      last = absl::DataLossError(absl::StrFormat("%s: response ended at byte %d of %d",
                                                 Describe(where), app.offset, f.size));
    } else {
      continue;  // body complete: verify on the next pass
    }
    if (++failures >= max_attempts) {
      if (resp && resp->status == 429) return HubError(*resp, where, target);
      return absl::Status(
          absl::IsDataLoss(last) ? absl::StatusCode::kDataLoss : absl::StatusCode::kUnavailable,
          absl::StrCat(Describe(where), ": giving up after ", failures,
                       " failed attempts: ", last.message()));
    }
    if (!SleepCancellable(o, BackoffMs(o, failures - 1, resp))) {
      return absl::CancelledError("fetch cancelled");
    }
  }
}

}  // namespace llama::fetch
