// The set of model variants a server knows: (repo, branch) pinned to a commit, named by
// the branch or an alias, each with a lifecycle state and, once loaded, a Scheduler.
// Fetching is done elsewhere (services/ through the fetcher) and reported here; loading
// happens here, off the lock, and swaps in atomically only on success, so a failed load
// never disturbs what is serving.
//
// States: absent -> fetching -> fetched -> loading -> ready -> unloading (-> fetched);
// failed (with a reason) when a fetch or load failed and no copy is serving. While a new
// commit of a ready variant is fetched or loaded, the state says so but the old copy keeps
// answering Acquire.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/config.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"

namespace llama {

enum class VariantState { kAbsent, kFetching, kFetched, kLoading, kReady, kUnloading, kFailed };
// "absent", "fetching", "fetched", "loading", "ready", "unloading", "failed"
const char* VariantStateName(VariantState s);

struct VariantSpec {
  std::string name;                  // usually the branch, e.g. "gptq-4bit-32g-actorder_True"
  std::string repo;                  // e.g. "TheBloke/Llama-2-7b-Chat-GPTQ"
  std::string branch;                // empty: same as name
  std::vector<std::string> aliases;  // other names that resolve to this variant
  std::string commit;                // pinned commit when known (else set by fetch/load)
  std::string snapshot_dir;          // when already on disk: state starts as fetched
};

struct VariantInfo {
  std::string name;
  std::vector<std::string> aliases;
  VariantState state = VariantState::kAbsent;
  std::string repo, branch;
  std::string commit;          // of the serving copy if any, else the pinned/fetched one
  std::string snapshot_dir;
  std::string pending_commit;  // commit being fetched/loaded while another copy serves
  std::optional<QuantConfig> quant;  // from the snapshot's config once fetched or loaded
                                     // (absent: dense, or not known yet)
  size_t memory_bytes = 0;     // runner weights + KV cache of the serving copy
  std::string device;          // runner device_name() of the serving copy
  std::string error;           // last fetch/load failure (kept while an old copy serves)
  int64_t fetch_bytes_done = 0, fetch_bytes_total = 0;  // progress of the current fetch
  bool serving = false;        // Acquire returns a scheduler for it
  bool is_default = false;
};

// What a load produces; the default loader builds it from a snapshot dir. Tests and
// other backends can inject their own through LoadWith.
struct LoadedModel {
  std::unique_ptr<ModelRunner> runner;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::vector<int> eos_ids;           // used when SchedulerOptions::eos_ids is empty
  std::optional<QuantConfig> quant;
};
using ModelLoader = std::function<absl::StatusOr<LoadedModel>()>;

// Loads weights + tokenizer + generation config from `dir` and creates a runner.
absl::StatusOr<LoadedModel> LoadModelFromDir(const std::string& dir, Backend backend,
                                             const RunnerOptions& runner_options);

class VariantRegistry {
 public:
  // Called on every state or progress change, with the registry lock held: keep it cheap
  // and never call back into the registry from it.
  using Listener = std::function<void(const VariantInfo&)>;

  VariantRegistry();
  ~VariantRegistry();  // releases every scheduler (in-flight streams holding one finish)
  VariantRegistry(const VariantRegistry&) = delete;
  VariantRegistry& operator=(const VariantRegistry&) = delete;

  // InvalidArgument (empty name), AlreadyExists (name or alias taken by another variant).
  absl::Status Register(VariantSpec spec);
  absl::Status AddAlias(const std::string& name_or_alias, const std::string& alias);
  // Canonical name of a name or alias; NotFound.
  absl::StatusOr<std::string> Resolve(const std::string& name_or_alias) const;
  absl::StatusOr<VariantInfo> Get(const std::string& name_or_alias) const;
  std::vector<VariantInfo> List() const;  // sorted by name

  // Fetch reporting (services/ drives the fetcher). BeginFetch: state fetching (an old
  // copy keeps serving). FetchDone: commit + snapshot dir recorded, state fetched (or
  // ready again when a copy serves). FetchFailed: error recorded, state failed (or ready).
  absl::Status BeginFetch(const std::string& name, const std::string& commit = "");
  absl::Status ReportFetchProgress(const std::string& name, int64_t done, int64_t total);
  absl::Status FetchDone(const std::string& name, const std::string& commit,
                         const std::string& snapshot_dir);
  absl::Status FetchFailed(const std::string& name, const absl::Status& error);

  // Loads `snapshot_dir` (empty: the recorded one, and then an empty `commit` means the
  // recorded commit) as the variant's serving copy. Blocks
  // until loaded. FailedPrecondition while another load of it runs. On failure the
  // previous copy (if any) keeps serving and the reason is recorded and returned.
  absl::Status Load(const std::string& name, const std::string& snapshot_dir,
                    const std::string& commit, Backend backend,
                    const RunnerOptions& runner_options, SchedulerOptions scheduler_options);
  absl::Status LoadWith(const std::string& name, const std::string& snapshot_dir,
                        const std::string& commit, const ModelLoader& loader,
                        SchedulerOptions scheduler_options);

  // New requests get FailedPrecondition at once; streams that hold the scheduler finish
  // intact. State is unloading until the last holder lets go, then fetched. Does not
  // block. FailedPrecondition when not loaded or while loading.
  absl::Status Unload(const std::string& name);

  // The serving scheduler of a variant ("" = the default). NotFound (unknown name, or no
  // default set), FailedPrecondition (known but not serving; the message has the state).
  // Callers keep the returned pointer until their stream has ended.
  absl::StatusOr<std::shared_ptr<Scheduler>> Acquire(const std::string& name_or_empty) const;

  absl::Status SetDefault(const std::string& name_or_alias);  // NotFound when unknown
  std::string default_name() const;                           // "" when unset

  // Marks the variant absent (its files are gone): clears commit and snapshot dir.
  // FailedPrecondition while loaded, loading or unloading.
  absl::Status Remove(const std::string& name_or_alias);
  // Removes the entry entirely (same preconditions as Remove).
  absl::Status Forget(const std::string& name_or_alias);

  void SetListener(Listener listener);

  struct Core;  // shared with scheduler deleters (defined in registry.cc)

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace llama
