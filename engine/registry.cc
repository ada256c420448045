#include "engine/registry.h"

#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/weights.h"

namespace llama {

const char* VariantStateName(VariantState s) {
  switch (s) {
    case VariantState::kAbsent: return "absent";
    case VariantState::kFetching: return "fetching";
    case VariantState::kFetched: return "fetched";
    case VariantState::kLoading: return "loading";
    case VariantState::kReady: return "ready";
    case VariantState::kUnloading: return "unloading";
    case VariantState::kFailed: return "failed";
  }
  return "unknown";
}

absl::StatusOr<LoadedModel> LoadModelFromDir(const std::string& dir, Backend backend,
                                             const RunnerOptions& runner_options) {
  absl::StatusOr<std::shared_ptr<const ModelWeights>> weights = LoadModelWeights(dir);
  if (!weights.ok()) return weights.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(dir);
  if (!tok.ok()) return tok.status();
  const ModelConfig& config = (*weights)->config;
  if ((*tok)->vocab_size() > config.vocab_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": tokenizer has ", (*tok)->vocab_size(), " pieces but the model's vocab_size is ",
        config.vocab_size));
  }
  LoadedModel m;
  m.quant = config.quant;
  absl::StatusOr<GenerationConfig> gen = LoadGenerationConfig(dir);
  if (gen.ok() && !gen->eos_token_ids.empty()) {
    m.eos_ids = gen->eos_token_ids;
  } else {
    m.eos_ids = {config.eos_token_id};
  }
  absl::StatusOr<std::unique_ptr<ModelRunner>> runner =
      CreateRunner(backend, *std::move(weights), runner_options);
  if (!runner.ok()) return runner.status();
  m.runner = *std::move(runner);
  m.tokenizer = std::shared_ptr<const Tokenizer>(*std::move(tok));
  return m;
}

namespace {

// Registry-side record of one variant. The state is derived from these facts so that
// overlapping operations (a fetch while an old copy serves) compose.
struct Variant {
  std::string name, repo, branch;
  std::vector<std::string> aliases;
  std::string fetched_commit, fetched_dir;  // latest snapshot on disk
  std::string pending_commit;               // being fetched or loaded
  bool fetching = false;
  bool loading = false;
  bool failed = false;                      // last fetch/load failed
  std::string error;
  int64_t bytes_done = 0, bytes_total = 0;
  // Serving copy.
  std::shared_ptr<Scheduler> sched;
  uint64_t serving_id = 0;
  std::string serving_commit, serving_dir, device;
  std::optional<QuantConfig> quant;
  size_t memory_bytes = 0;
  uint64_t unloading_id = 0;  // unloaded copy still held by streams (0: none)

  VariantState state() const {
    if (loading) return VariantState::kLoading;
    if (fetching) return VariantState::kFetching;
    if (sched != nullptr) return VariantState::kReady;
    if (unloading_id != 0) return VariantState::kUnloading;
    if (failed) return VariantState::kFailed;
    if (!fetched_dir.empty()) return VariantState::kFetched;
    return VariantState::kAbsent;
  }
};

}  // namespace

struct VariantRegistry::Core {
  mutable absl::Mutex mu;
  std::map<std::string, Variant> variants ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> aliases ABSL_GUARDED_BY(mu);  // alias -> name
  std::string default_name ABSL_GUARDED_BY(mu);
  Listener listener ABSL_GUARDED_BY(mu);
  uint64_t next_id ABSL_GUARDED_BY(mu) = 1;

  Variant* Find(const std::string& name_or_alias) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = variants.find(name_or_alias);
    if (it != variants.end()) return &it->second;
    auto a = aliases.find(name_or_alias);
    if (a == aliases.end()) return nullptr;
    it = variants.find(a->second);
    return it == variants.end() ? nullptr : &it->second;
  }

  absl::StatusOr<Variant*> Lookup(const std::string& name_or_alias)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Variant* v = Find(name_or_alias);
    if (v == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown variant '", name_or_alias, "'"));
    }
    return v;
  }

  VariantInfo Info(const Variant& v) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    VariantInfo i;
    i.name = v.name;
    i.aliases = v.aliases;
    i.state = v.state();
    i.repo = v.repo;
    i.branch = v.branch;
    i.serving = v.sched != nullptr;
    i.commit = i.serving ? v.serving_commit : v.fetched_commit;
    i.snapshot_dir = i.serving ? v.serving_dir : v.fetched_dir;
    if ((v.fetching || v.loading) && v.pending_commit != i.commit) {
      i.pending_commit = v.pending_commit;
    }
    i.quant = v.quant;
    i.memory_bytes = i.serving ? v.memory_bytes : 0;
    i.device = i.serving ? v.device : "";
    i.error = v.error;
    i.fetch_bytes_done = v.bytes_done;
    i.fetch_bytes_total = v.bytes_total;
    i.is_default = v.name == default_name;
    return i;
  }

  void Notify(const Variant& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (listener) listener(Info(v));
  }

  // One state transition: looks up `name_or_alias` under the lock and applies `change` to
  // it; when that succeeds the listener hears of the new state. A failed change (a
  // precondition not met) returns its status and leaves the variant as it found it.
  absl::Status Transition(const std::string& name_or_alias,
                          absl::FunctionRef<absl::Status(Variant&)> change)
      ABSL_LOCKS_EXCLUDED(mu) {
    absl::MutexLock lock(&mu);
    absl::StatusOr<Variant*> found = Lookup(name_or_alias);
    if (!found.ok()) return found.status();
    Variant& v = **found;
    if (absl::Status s = change(v); !s.ok()) return s;
    Notify(v);
    return absl::OkStatus();
  }

  // The last holder of an unloaded (or replaced) copy let go of it.
  void OnReleased(const std::string& name, uint64_t id) {
    absl::MutexLock lock(&mu);
    auto it = variants.find(name);
    if (it == variants.end() || it->second.unloading_id != id) return;
    it->second.unloading_id = 0;
    Notify(it->second);
  }
};

VariantRegistry::VariantRegistry() : core_(std::make_shared<Core>()) {}

VariantRegistry::~VariantRegistry() {
  std::vector<std::shared_ptr<Scheduler>> release;
  {
    absl::MutexLock lock(&core_->mu);
    core_->listener = nullptr;
    for (auto& [name, v] : core_->variants) {
      if (v.sched != nullptr) release.push_back(std::move(v.sched));
    }
  }
  release.clear();  // off the lock: deleters take it
}

namespace {
// Quantization settings of a snapshot on disk, when its config can be read.
std::optional<QuantConfig> QuantOf(const std::string& dir) {
  if (dir.empty()) return std::nullopt;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  return config.ok() ? config->quant : std::nullopt;
}
}  // namespace

absl::Status VariantRegistry::Register(VariantSpec spec) {
  if (spec.name.empty()) {
    return absl::InvalidArgumentError("VariantRegistry::Register: empty variant name");
  }
  std::optional<QuantConfig> quant = QuantOf(spec.snapshot_dir);  // file IO off the lock
  absl::MutexLock lock(&core_->mu);
  std::vector<std::string> names = spec.aliases;
  names.push_back(spec.name);
  for (const std::string& n : names) {
    if (n.empty()) return absl::InvalidArgumentError("VariantRegistry::Register: empty alias");
    if (core_->Find(n) != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat(
          "VariantRegistry::Register: name '", n, "' already names a variant"));
    }
  }
  Variant v;
  v.name = spec.name;
  v.repo = std::move(spec.repo);
  v.branch = spec.branch.empty() ? spec.name : std::move(spec.branch);
  v.fetched_commit = std::move(spec.commit);
  v.fetched_dir = std::move(spec.snapshot_dir);
  v.quant = std::move(quant);
  for (const std::string& a : spec.aliases) {
    if (a == spec.name) continue;
    core_->aliases[a] = spec.name;
    v.aliases.push_back(a);
  }
  Variant& stored = core_->variants[spec.name] = std::move(v);
  core_->Notify(stored);
  return absl::OkStatus();
}

absl::Status VariantRegistry::AddAlias(const std::string& name_or_alias,
                                       const std::string& alias) {
  if (alias.empty()) return absl::InvalidArgumentError("VariantRegistry::AddAlias: empty alias");
  absl::MutexLock lock(&core_->mu);
  absl::StatusOr<Variant*> v = core_->Lookup(name_or_alias);
  if (!v.ok()) return v.status();
  if (Variant* other = core_->Find(alias); other != nullptr) {
    if (other == *v) return absl::OkStatus();
    return absl::AlreadyExistsError(absl::StrCat("VariantRegistry::AddAlias: '", alias,
                                                 "' already names variant '", other->name, "'"));
  }
  core_->aliases[alias] = (*v)->name;
  (*v)->aliases.push_back(alias);
  core_->Notify(**v);
  return absl::OkStatus();
}

absl::StatusOr<std::string> VariantRegistry::Resolve(const std::string& name_or_alias) const {
  absl::MutexLock lock(&core_->mu);
  absl::StatusOr<Variant*> v = core_->Lookup(name_or_alias);
  if (!v.ok()) return v.status();
  return (*v)->name;
}

absl::StatusOr<VariantInfo> VariantRegistry::Get(const std::string& name_or_alias) const {
  absl::MutexLock lock(&core_->mu);
  absl::StatusOr<Variant*> v = core_->Lookup(name_or_alias);
  if (!v.ok()) return v.status();
  return core_->Info(**v);
}

std::vector<VariantInfo> VariantRegistry::List() const {
  absl::MutexLock lock(&core_->mu);
  std::vector<VariantInfo> out;
  for (const auto& [name, v] : core_->variants) out.push_back(core_->Info(v));
  return out;
}

absl::Status VariantRegistry::BeginFetch(const std::string& name, const std::string& commit) {
  return core_->Transition(name, [&](Variant& v) {
    if (v.fetching) {
      return absl::FailedPreconditionError(
          absl::StrCat("variant '", v.name, "' is already being fetched"));
    }
    v.fetching = true;
    v.failed = false;
    v.pending_commit = commit;
    v.bytes_done = v.bytes_total = 0;
    return absl::OkStatus();
  });
}

absl::Status VariantRegistry::ReportFetchProgress(const std::string& name, int64_t done,
                                                  int64_t total) {
  return core_->Transition(name, [&](Variant& v) {
    if (!v.fetching) {
      return absl::FailedPreconditionError(
          absl::StrCat("variant '", v.name, "': progress reported but no fetch is running"));
    }
    v.bytes_done = done;
    v.bytes_total = total;
    return absl::OkStatus();
  });
}

absl::Status VariantRegistry::FetchDone(const std::string& name, const std::string& commit,
                                        const std::string& snapshot_dir) {
  std::optional<QuantConfig> quant = QuantOf(snapshot_dir);  // file IO off the lock
  return core_->Transition(name, [&](Variant& v) {
    v.fetching = false;
    v.failed = false;
    v.error.clear();
    v.fetched_commit = commit;
    v.fetched_dir = snapshot_dir;
    if (quant.has_value() && v.sched == nullptr) v.quant = quant;
    if (!v.loading) v.pending_commit.clear();
    return absl::OkStatus();
  });
}

absl::Status VariantRegistry::FetchFailed(const std::string& name, const absl::Status& error) {
  return core_->Transition(name, [&](Variant& v) {
    v.fetching = false;
    v.failed = v.sched == nullptr;
    v.error = absl::StrCat("fetch failed: ", error.ToString());
    if (!v.loading) v.pending_commit.clear();
    return absl::OkStatus();
  });
}

absl::Status VariantRegistry::Load(const std::string& name, const std::string& snapshot_dir,
                                   const std::string& commit, Backend backend,
                                   const RunnerOptions& runner_options,
                                   SchedulerOptions scheduler_options) {
  std::string dir = snapshot_dir;
  std::string pinned = commit;
  if (dir.empty()) {
    absl::MutexLock lock(&core_->mu);
    absl::StatusOr<Variant*> found = core_->Lookup(name);
    if (!found.ok()) return found.status();
    dir = (*found)->fetched_dir;
    if (pinned.empty()) pinned = (*found)->fetched_commit;
    if (dir.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "variant '", (*found)->name, "' has no snapshot on disk (state ",
          VariantStateName((*found)->state()), "); fetch it first"));
    }
  }
  return LoadWith(
      name, dir, pinned,
      [dir, backend, runner_options] { return LoadModelFromDir(dir, backend, runner_options); },
      std::move(scheduler_options));
}

absl::Status VariantRegistry::LoadWith(const std::string& name, const std::string& snapshot_dir,
                                       const std::string& commit, const ModelLoader& loader,
                                       SchedulerOptions scheduler_options) {
  std::string canonical;
  absl::Status begun = core_->Transition(name, [&](Variant& v) {
    if (v.loading) {
      return absl::FailedPreconditionError(
          absl::StrCat("variant '", v.name, "' is already loading"));
    }
    canonical = v.name;
    v.loading = true;
    v.pending_commit = commit;
    return absl::OkStatus();
  });
  if (!begun.ok()) return begun;

  // The expensive part, off the lock: other variants keep serving and can be loaded.
  absl::StatusOr<LoadedModel> loaded = loader();
  std::shared_ptr<Scheduler> sched;
  std::string device;
  size_t memory = 0;
  std::optional<QuantConfig> quant;
  absl::Status status = loaded.status();
  if (status.ok() && (loaded->runner == nullptr || loaded->tokenizer == nullptr)) {
    status = absl::InternalError("loader returned no runner or no tokenizer");
  }
  uint64_t id = 0;
  if (status.ok()) {
    {
      absl::MutexLock lock(&core_->mu);
      id = core_->next_id++;
    }
    device = loaded->runner->device_name();
    memory = loaded->runner->memory_bytes();
    quant = loaded->quant;
    if (scheduler_options.eos_ids.empty()) scheduler_options.eos_ids = loaded->eos_ids;
    std::weak_ptr<Core> weak = core_;
    sched = std::shared_ptr<Scheduler>(
        new Scheduler(std::move(loaded->runner), std::move(loaded->tokenizer),
                      std::move(scheduler_options)),
        [weak, canonical, id](Scheduler* s) {
          delete s;  // joins the worker; its streams have ended
          if (std::shared_ptr<Core> core = weak.lock()) core->OnReleased(canonical, id);
        });
  }

  std::shared_ptr<Scheduler> replaced;  // released off the lock
  absl::Status result;
  {
    absl::MutexLock lock(&core_->mu);
    auto it = core_->variants.find(canonical);
    if (it == core_->variants.end()) {
      // Forgotten meanwhile (Forget refuses while loading, so this is defensive).
      result = absl::AbortedError(absl::StrCat("variant '", canonical, "' was removed"));
    } else if (!status.ok()) {
      Variant& v = it->second;
      v.loading = false;
      v.pending_commit.clear();
      v.failed = v.sched == nullptr;
      v.error = absl::StrCat("load of ", snapshot_dir, " failed: ", status.message());
      result = absl::Status(status.code(), absl::StrCat("loading variant '", canonical,
                                                        "' from ", snapshot_dir, ": ",
                                                        status.message()));
      core_->Notify(v);
    } else {
      Variant& v = it->second;
      replaced = std::move(v.sched);
      if (replaced != nullptr) v.unloading_id = v.serving_id;
      v.sched = std::move(sched);
      v.serving_id = id;
      v.serving_commit = commit;
      v.serving_dir = snapshot_dir;
      v.device = device;
      v.memory_bytes = memory;
      v.quant = quant;
      v.loading = false;
      v.failed = false;
      v.error.clear();
      v.pending_commit.clear();
      if (v.fetched_dir.empty()) {
        v.fetched_dir = snapshot_dir;
        v.fetched_commit = commit;
      }
      core_->Notify(v);
    }
  }
  replaced.reset();  // the old copy lives on in the streams that still hold it
  sched.reset();
  return result;
}

absl::Status VariantRegistry::Unload(const std::string& name) {
  std::shared_ptr<Scheduler> old;
  absl::Status stopped = core_->Transition(name, [&](Variant& v) {
    if (v.loading) {
      return absl::FailedPreconditionError(
          absl::StrCat("variant '", v.name, "' is loading; unload it once the load ends"));
    }
    if (v.sched == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "variant '", v.name, "' is not loaded (state ", VariantStateName(v.state()), ")"));
    }
    old = std::move(v.sched);
    v.unloading_id = v.serving_id;
    v.device.clear();
    v.memory_bytes = 0;
    return absl::OkStatus();
  });
  if (!stopped.ok()) return stopped;
  old->StopAccepting();
  old.reset();  // if no stream holds it, it is released here and the state becomes fetched
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Scheduler>> VariantRegistry::Acquire(
    const std::string& name_or_empty) const {
  absl::MutexLock lock(&core_->mu);
  std::string name = name_or_empty;
  if (name.empty()) {
    if (core_->default_name.empty()) {
      return absl::NotFoundError("no variant requested and no default variant set");
    }
    name = core_->default_name;
  }
  absl::StatusOr<Variant*> found = core_->Lookup(name);
  if (!found.ok()) return found.status();
  const Variant& v = **found;
  if (v.sched == nullptr) {
    std::string msg = absl::StrCat("variant '", v.name, "' is not ready (state ",
                                   VariantStateName(v.state()), ")");
    if (!v.error.empty()) absl::StrAppend(&msg, ": ", v.error);
    return absl::FailedPreconditionError(msg);
  }
  return v.sched;
}

absl::Status VariantRegistry::SetDefault(const std::string& name_or_alias) {
  absl::MutexLock lock(&core_->mu);
  absl::StatusOr<Variant*> found = core_->Lookup(name_or_alias);
  if (!found.ok()) return found.status();
  const std::string previous = core_->default_name;
  core_->default_name = (*found)->name;
  if (auto it = core_->variants.find(previous); it != core_->variants.end()) {
    core_->Notify(it->second);
  }
  core_->Notify(**found);
  return absl::OkStatus();
}

std::string VariantRegistry::default_name() const {
  absl::MutexLock lock(&core_->mu);
  return core_->default_name;
}

namespace {
absl::Status CheckRemovable(const Variant& v) {
  if (v.sched != nullptr || v.loading || v.unloading_id != 0 || v.fetching) {
    return absl::FailedPreconditionError(
        absl::StrCat("variant '", v.name, "' is in use (state ", VariantStateName(v.state()),
                     "); unload it and let its streams finish first"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status VariantRegistry::Remove(const std::string& name_or_alias) {
  return core_->Transition(name_or_alias, [](Variant& v) {
    if (absl::Status s = CheckRemovable(v); !s.ok()) return s;
    v.fetched_dir.clear();
    v.fetched_commit.clear();
    v.quant.reset();
    v.failed = false;
    v.error.clear();
    v.bytes_done = v.bytes_total = 0;
    return absl::OkStatus();
  });
}

absl::Status VariantRegistry::Forget(const std::string& name_or_alias) {
  absl::MutexLock lock(&core_->mu);
  absl::StatusOr<Variant*> found = core_->Lookup(name_or_alias);
  if (!found.ok()) return found.status();
  Variant& v = **found;
  if (absl::Status s = CheckRemovable(v); !s.ok()) return s;
  const std::string name = v.name;
  for (const std::string& a : v.aliases) core_->aliases.erase(a);
  if (core_->default_name == name) core_->default_name.clear();
  core_->variants.erase(name);
  return absl::OkStatus();
}

void VariantRegistry::SetListener(Listener listener) {
  absl::MutexLock lock(&core_->mu);
  core_->listener = std::move(listener);
}

}  // namespace llama
