#include "services/metrics.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"

namespace llama::services {
namespace {

const std::vector<double> kTtftBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10,  30};
const std::vector<double> kTpotBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1};
const char* const kStates[] = {"absent", "fetching", "fetched", "loading",
                               "ready",  "unloading", "failed"};

// Label values: escape backslash, quote and newline.
std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string Num(double v) { return absl::StrFormat("%.9g", v); }

}  // namespace

void Metrics::Histogram::Observe(double v) {
  if (counts.empty()) counts.assign(bounds.size() + 1, 0);
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  ++counts[i];
  sum += v;
  ++count;
}

Metrics::Metrics() = default;

void Metrics::RequestFinished(const std::string& variant, const std::string& method,
                              const std::string& code) {
  absl::MutexLock lock(&mu_);
  ++requests_[{variant, method, code}];
}
void Metrics::PromptTokens(const std::string& variant, int64_t n) {
  absl::MutexLock lock(&mu_);
  prompt_tokens_[variant] += n;
}
void Metrics::GeneratedTokens(const std::string& variant, int64_t n) {
  absl::MutexLock lock(&mu_);
  generated_tokens_[variant] += n;
}
void Metrics::FirstToken(const std::string& variant, absl::Duration ttft) {
  absl::MutexLock lock(&mu_);
  Histogram& h = ttft_[variant];
  if (h.bounds.empty()) h.bounds = kTtftBounds;
  h.Observe(absl::ToDoubleSeconds(ttft));
}
void Metrics::TokenGap(const std::string& variant, absl::Duration gap) {
  absl::MutexLock lock(&mu_);
  Histogram& h = tpot_[variant];
  if (h.bounds.empty()) h.bounds = kTpotBounds;
  h.Observe(absl::ToDoubleSeconds(gap));
}
void Metrics::StreamOpened(const std::string& variant) {
  absl::MutexLock lock(&mu_);
  ++active_streams_[variant];
}
void Metrics::StreamClosed(const std::string& variant) {
  absl::MutexLock lock(&mu_);
  --active_streams_[variant];
}
int64_t Metrics::active_streams(const std::string& variant) const {
  absl::MutexLock lock(&mu_);
  auto it = active_streams_.find(variant);
  return it == active_streams_.end() ? 0 : it->second;
}

std::string Metrics::Render(const std::vector<VariantGauges>& variants) const {
  std::string out;
  absl::MutexLock lock(&mu_);
  auto counter = [&out](const char* name, const char* help,
                        const std::map<std::string, int64_t>& m, const char* type) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [v, n] : m) absl::StrAppend(&out, name, "{variant=\"", Esc(v), "\"} ", n, "\n");
  };
  absl::StrAppend(&out,
                  "# HELP llama_requests_total Finished RPCs by method and status code.\n"
                  "# TYPE llama_requests_total counter\n");
  for (const auto& [key, n] : requests_) {
    const auto& [v, method, code] = key;
    absl::StrAppend(&out, "llama_requests_total{variant=\"", Esc(v), "\",method=\"", Esc(method),
                    "\",code=\"", Esc(code), "\"} ", n, "\n");
  }
  counter("llama_prompt_tokens_total", "Prompt tokens of admitted requests.", prompt_tokens_,
          "counter");
  counter("llama_generated_tokens_total", "Generated tokens.", generated_tokens_, "counter");
  auto histogram = [&out](const char* name, const char* help,
                          const std::map<std::string, Histogram>& m) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
    for (const auto& [v, h] : m) {
      int64_t cum = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cum += h.counts.empty() ? 0 : h.counts[i];
        absl::StrAppend(&out, name, "_bucket{variant=\"", Esc(v), "\",le=\"", Num(h.bounds[i]),
                        "\"} ", cum, "\n");
      }
      absl::StrAppend(&out, name, "_bucket{variant=\"", Esc(v), "\",le=\"+Inf\"} ", h.count, "\n");
      absl::StrAppend(&out, name, "_sum{variant=\"", Esc(v), "\"} ", Num(h.sum), "\n");
      absl::StrAppend(&out, name, "_count{variant=\"", Esc(v), "\"} ", h.count, "\n");
    }
  };
  histogram("llama_time_to_first_token_seconds", "Time from admission to the first token.",
            ttft_);
  histogram("llama_time_per_output_token_seconds", "Gap between consecutive tokens of a stream.",
            tpot_);
  counter("llama_active_streams", "Open Generate/Chat streams.", active_streams_, "gauge");

  absl::StrAppend(&out,
                  "# HELP llama_queue_depth Requests waiting for a KV slot.\n"
                  "# TYPE llama_queue_depth gauge\n");
  for (const auto& g : variants) {
    absl::StrAppend(&out, "llama_queue_depth{variant=\"", Esc(g.variant), "\"} ", g.queued, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP llama_running_sequences Requests holding a KV slot.\n"
                  "# TYPE llama_running_sequences gauge\n");
  for (const auto& g : variants) {
    absl::StrAppend(&out, "llama_running_sequences{variant=\"", Esc(g.variant), "\"} ", g.running,
                    "\n");
  }
  absl::StrAppend(&out,
                  "# HELP llama_variant_state 1 for the variant's current lifecycle state.\n"
                  "# TYPE llama_variant_state gauge\n");
  for (const auto& g : variants) {
    for (const char* s : kStates) {
      absl::StrAppend(&out, "llama_variant_state{variant=\"", Esc(g.variant), "\",state=\"", s,
                      "\"} ", g.state == s ? 1 : 0, "\n");
    }
  }
  absl::StrAppend(&out,
                  "# HELP llama_variant_memory_bytes Weights + KV cache of the serving copy.\n"
                  "# TYPE llama_variant_memory_bytes gauge\n");
  for (const auto& g : variants) {
    absl::StrAppend(&out, "llama_variant_memory_bytes{variant=\"", Esc(g.variant), "\"} ",
                    g.memory_bytes, "\n");
  }
  return out;
}

MetricsHttpServer::MetricsHttpServer(Render render) : render_(std::move(render)) {}
MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& listen) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen: expected host:port, got '", listen, "'"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  http_ = std::make_unique<httplib::Server>();
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
  } else {
    port_ = http_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    http_.reset();
    return absl::UnavailableError(absl::StrCat("metrics: cannot bind ", listen));
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

}  // namespace llama::services
