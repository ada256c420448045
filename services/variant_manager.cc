#include "services/variant_manager.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace llama::services {
namespace {

namespace fs = std::filesystem;

// Bytes of the files a snapshot dir references (symlinks into blobs followed).
int64_t SnapshotBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  if (dir.empty() || !fs::exists(dir, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (fs::is_regular_file(it->path(), size_ec)) {
      uintmax_t n = fs::file_size(it->path(), size_ec);
      if (!size_ec) total += static_cast<int64_t>(n);
    }
  }
  return total;
}

}  // namespace

VariantManager::VariantManager(VariantManagerOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  registry_.SetListener([this](const VariantInfo& info) { OnStateChange(info); });
}

VariantManager::~VariantManager() { registry_.SetListener(nullptr); }

void VariantManager::SetHealthSink(HealthSink sink) {
  absl::MutexLock lock(&mu_);
  health_ = std::move(sink);
  if (!health_) return;
  for (const auto& [name, serving] : serving_) health_(name, serving);
  auto it = serving_.find(default_);
  bool overall = !default_.empty() && it != serving_.end() && it->second;
  health_("", overall);
  health_("llama.v1.Inference", overall);
}

void VariantManager::OnStateChange(const VariantInfo& info) {
  absl::MutexLock lock(&mu_);
  bool serving = info.state == VariantState::kReady && info.serving;
  serving_[info.name] = serving;
  if (info.is_default) default_ = info.name;
  if (!health_) return;
  health_(info.name, serving);
  for (const auto& alias : info.aliases) health_(alias, serving);
  auto it = serving_.find(default_);
  bool overall = !default_.empty() && it != serving_.end() && it->second;
  health_("", overall);
  health_("llama.v1.Inference", overall);
}

absl::Status VariantManager::Ensure(const std::string& name, const std::string& repo,
                                    const std::string& branch) {
  if (registry_.Resolve(name).ok()) return absl::OkStatus();
  VariantSpec spec;
  spec.name = name;
  spec.repo = repo.empty() ? options_.repo : repo;
  spec.branch = branch.empty() ? name : branch;
  absl::Status s = registry_.Register(std::move(spec));
  if (absl::IsAlreadyExists(s)) return absl::OkStatus();  // raced with another Ensure
  return s;
}

absl::StatusOr<VariantInfo> VariantManager::Fetch(
    const std::string& name, const std::string& repo, const std::string& revision,
    std::function<void(const fetch::Progress&)> on_progress, const std::atomic<bool>* cancel) {
  if (name.empty()) return absl::InvalidArgumentError("variant name is empty");
  if (absl::Status s = Ensure(name, repo, revision); !s.ok()) return s;
  absl::StatusOr<VariantInfo> info = registry_.Get(name);
  if (!info.ok()) return info.status();
  const std::string canonical = info->name;
  const std::string fetch_repo = repo.empty() ? info->repo : repo;
  const std::string fetch_rev = revision.empty() ? info->branch : revision;
  if (absl::Status s = registry_.BeginFetch(canonical); !s.ok()) return s;

  fetch::FetchOptions opts = options_.fetch;
  opts.cancel = cancel;
  opts.on_progress = [&](const fetch::Progress& p) {
    registry_.ReportFetchProgress(canonical, p.done, p.total).IgnoreError();
    if (on_progress) on_progress(p);
  };
  absl::StatusOr<fetch::FetchResult> result = fetch::FetchRepo(fetch_repo, fetch_rev, opts);
  if (!result.ok() && absl::IsUnavailable(result.status())) {
    // Hub unreachable: a snapshot already in the cache still serves.
    absl::StatusOr<fetch::FetchResult> cached =
        fetch::CachedSnapshot(fetch_repo, fetch_rev, options_.fetch);
    if (cached.ok()) result = std::move(cached);
  }
  if (!result.ok()) {
    absl::Status err(result.status().code(),
                     absl::StrCat("fetch ", fetch_repo, "@", fetch_rev, ": ",
                                  result.status().message()));
    registry_.FetchFailed(canonical, err).IgnoreError();
    return err;
  }
  if (absl::Status s = registry_.FetchDone(canonical, result->commit, result->snapshot_dir);
      !s.ok()) {
    return s;
  }
  return registry_.Get(canonical);
}

SchedulerOptions VariantManager::SchedulerOptionsFor(const std::string& name) const {
  SchedulerOptions opts;
  opts.max_queue = options_.max_queue;
  if (metrics_ != nullptr) {
    Metrics* m = metrics_;
    opts.hooks.on_first_token = [m, name](const std::string&, absl::Duration ttft) {
      m->FirstToken(name, ttft);
      m->GeneratedTokens(name, 1);
    };
    opts.hooks.on_token = [m, name](const std::string&, absl::Duration gap) {
      m->TokenGap(name, gap);
      m->GeneratedTokens(name, 1);
    };
    opts.hooks.on_finish = [m, name](const std::string&, FinishReason, const absl::Status&,
                                     int prompt_tokens, int) {
      m->PromptTokens(name, prompt_tokens);
    };
  }
  return opts;
}

absl::StatusOr<VariantInfo> VariantManager::Load(const std::string& name) {
  absl::StatusOr<VariantInfo> info = registry_.Get(name);
  if (absl::IsNotFound(info.status()) && !name.empty()) {
    // An unknown name is taken as a branch of the server's repo; a branch the hub does
    // not have leaves nothing registered behind.
    info = Fetch(name, "", "");
    if (absl::IsNotFound(info.status())) registry_.Forget(name).IgnoreError();
    if (!info.ok()) return info.status();
  }
  if (!info.ok()) return info.status();
  if (info->snapshot_dir.empty()) {
    info = Fetch(info->name, "", "");
    if (!info.ok()) return info.status();
  }
  const std::string canonical = info->name;
  if (absl::Status s = registry_.Load(canonical, "", "", options_.backend, options_.runner,
                                      SchedulerOptionsFor(canonical));
      !s.ok()) {
    return s;
  }
  return registry_.Get(canonical);
}

absl::StatusOr<VariantInfo> VariantManager::Unload(const std::string& name) {
  if (absl::Status s = registry_.Unload(name); !s.ok()) return s;
  return registry_.Get(name);
}

absl::StatusOr<VariantInfo> VariantManager::SetDefault(const std::string& name) {
  if (absl::Status s = registry_.SetDefault(name); !s.ok()) return s;
  return registry_.Get(name);
}

absl::StatusOr<int64_t> VariantManager::Delete(const std::string& name, bool forget) {
  absl::StatusOr<VariantInfo> info = registry_.Get(name);
  if (!info.ok()) return info.status();
  if (info->serving || info->state == VariantState::kLoading ||
      info->state == VariantState::kUnloading || info->state == VariantState::kFetching) {
    return absl::FailedPreconditionError(absl::StrCat(
        "variant '", info->name, "' is ", VariantStateName(info->state),
        "; unload it before deleting"));
  }
  int64_t bytes = SnapshotBytes(info->snapshot_dir);
  if (absl::Status s = forget ? registry_.Forget(info->name) : registry_.Remove(info->name);
      !s.ok()) {
    return s;
  }
  if (!info->snapshot_dir.empty()) {
    absl::Status s = fetch::DeleteRevision(info->repo, info->branch, options_.fetch);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return bytes;
}

absl::StatusOr<VariantInfo> VariantManager::Get(const std::string& name) const {
  return registry_.Get(name);
}

std::vector<VariantInfo> VariantManager::List() const { return registry_.List(); }

absl::StatusOr<std::string> VariantManager::Resolve(const std::string& name_or_empty) const {
  if (name_or_empty.empty()) {
    std::string d = registry_.default_name();
    if (d.empty()) return absl::NotFoundError("no variant named and no default variant set");
    return d;
  }
  return registry_.Resolve(name_or_empty);
}

absl::StatusOr<std::shared_ptr<Scheduler>> VariantManager::Acquire(
    const std::string& name_or_empty) const {
  return registry_.Acquire(name_or_empty);
}

std::vector<VariantGauges> VariantManager::Gauges() const {
  std::vector<VariantGauges> out;
  for (const VariantInfo& info : registry_.List()) {
    VariantGauges g;
    g.variant = info.name;
    g.state = VariantStateName(info.state);
    g.memory_bytes = info.memory_bytes;
    if (info.serving) {
      absl::StatusOr<std::shared_ptr<Scheduler>> s = registry_.Acquire(info.name);
      if (s.ok()) {
        SchedulerStats st = (*s)->stats();
        g.queued = st.queued;
        g.running = st.active;
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace llama::services
