// Prometheus metrics of the server, rendered in the text exposition format and served
// over HTTP (GET /metrics). Every series carries the label `variant`.
//   llama_requests_total{variant,method,code}       counter  finished RPCs by status
//   llama_prompt_tokens_total{variant}              counter
//   llama_generated_tokens_total{variant}           counter
//   llama_time_to_first_token_seconds{variant}      histogram (from Submit)
//   llama_time_per_output_token_seconds{variant}    histogram (gap between tokens)
//   llama_active_streams{variant}                   gauge   open Generate/Chat streams
//   llama_queue_depth{variant}                      gauge   requests waiting for a slot
//   llama_running_sequences{variant}                gauge   requests holding a KV slot
//   llama_variant_state{variant,state}              gauge   1 for the current state
//   llama_variant_memory_bytes{variant}             gauge
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib { class Server; }

namespace llama::services {

// Per-variant values read at scrape time (from the registry and the schedulers).
struct VariantGauges {
  std::string variant;
  std::string state;  // VariantStateName
  int queued = 0;
  int running = 0;
  uint64_t memory_bytes = 0;
};

class Metrics {
 public:
  Metrics();

  void RequestFinished(const std::string& variant, const std::string& method,
                       const std::string& code);
  void PromptTokens(const std::string& variant, int64_t n);
  void GeneratedTokens(const std::string& variant, int64_t n);
  void FirstToken(const std::string& variant, absl::Duration ttft);
  void TokenGap(const std::string& variant, absl::Duration gap);
  void StreamOpened(const std::string& variant);
  void StreamClosed(const std::string& variant);

  int64_t active_streams(const std::string& variant) const;
  // The whole exposition; `variants` adds the scrape-time gauges.
  std::string Render(const std::vector<VariantGauges>& variants) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // per bucket (not cumulative), + overflow
    double sum = 0;
    int64_t count = 0;
    void Observe(double v);
  };

  mutable absl::Mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> requests_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> prompt_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> generated_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> ttft_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> tpot_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> active_streams_ ABSL_GUARDED_BY(mu_);
};

// GET /metrics (and /healthz) on host:port with cpp-httplib, on its own thread.
class MetricsHttpServer {
 public:
  using Render = std::function<std::string()>;
  explicit MetricsHttpServer(Render render);
  ~MetricsHttpServer();  // Stop()

  // "host:port" (port 0: any free port). InvalidArgument / Unavailable (bind failed).
  absl::Status Start(const std::string& listen);
  int port() const { return port_; }
  void Stop();

 private:
  Render render_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace llama::services
