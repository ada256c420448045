// The server's model variants: the engine's VariantRegistry plus what services/ adds to
// it — fetching branches through the fetcher, the backend and limits each load uses, the
// metrics hooks of every scheduler, and health/state notifications. Handlers in
// inference_service / admin_service call only this.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/registry.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "fetcher/fetcher.h"
#include "services/metrics.h"

namespace llama::services {

struct VariantManagerOptions {
  std::string repo = "TheBloke/Llama-2-7b-Chat-GPTQ";  // default repo of new variants
  fetch::FetchOptions fetch;     // endpoint, cache dir, token, ...
  Backend backend = Backend::kCpu;
  RunnerOptions runner;          // max_slots, device, threads
  int max_queue = 64;            // per variant
};

class VariantManager {
 public:
  // Called with (health service name, serving) whenever a variant's serving status or
  // the default changes; "" is the overall status (= the default variant serves).
  // Runs under registry locks: must be cheap, must not call back.
  using HealthSink = std::function<void(const std::string& service, bool serving)>;

  VariantManager(VariantManagerOptions options, Metrics* metrics);
  ~VariantManager();

  void SetHealthSink(HealthSink sink);

  // Registers `name` (branch `branch`, or name) of `repo` ("" = options repo) if unknown.
  absl::Status Ensure(const std::string& name, const std::string& repo = "",
                      const std::string& branch = "");

  // Fetches the variant's branch (or `revision`) into the cache, registering it first.
  // Falls back to an already cached snapshot when the hub is unreachable.
  absl::StatusOr<VariantInfo> Fetch(const std::string& name, const std::string& repo,
                                    const std::string& revision,
                                    std::function<void(const fetch::Progress&)> on_progress = {},
                                    const std::atomic<bool>* cancel = nullptr);
  // Loads the variant (fetching it first when it is not on disk; an unknown name is
  // fetched as a branch of the options repo). Blocks until ready.
  absl::StatusOr<VariantInfo> Load(const std::string& name);
  absl::StatusOr<VariantInfo> Unload(const std::string& name);
  absl::StatusOr<VariantInfo> SetDefault(const std::string& name);
  // Deletes the cached files (refused while loaded); returns the bytes removed.
  absl::StatusOr<int64_t> Delete(const std::string& name, bool forget);

  absl::StatusOr<VariantInfo> Get(const std::string& name) const;
  std::vector<VariantInfo> List() const;
  std::string default_name() const { return registry_.default_name(); }
  // Canonical name for routing: resolves aliases; "" = the default. NotFound.
  absl::StatusOr<std::string> Resolve(const std::string& name_or_empty) const;
  absl::StatusOr<std::shared_ptr<Scheduler>> Acquire(const std::string& name_or_empty) const;

  // Scrape-time gauges for every variant.
  std::vector<VariantGauges> Gauges() const;

  // What every load of `name` uses (metrics hooks included); tests use it with
  // registry().LoadWith to inject a runner.
  SchedulerOptions SchedulerOptionsFor(const std::string& name) const;
  VariantRegistry& registry() { return registry_; }
  const VariantManagerOptions& options() const { return options_; }

 private:
  void OnStateChange(const VariantInfo& info);

  VariantManagerOptions options_;
  Metrics* metrics_;  // may be null
  VariantRegistry registry_;

  mutable absl::Mutex mu_;  // never held while calling into registry_
  HealthSink health_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);
  std::string default_ ABSL_GUARDED_BY(mu_);
};

}  // namespace llama::services
