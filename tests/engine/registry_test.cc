// VariantRegistry: names, aliases, lifecycle states, atomic load swaps and unloads that
// let running streams finish — first with an injected fake loader, then with the four
// real stories260K GPTQ branches on the CPU backend.
#include "engine/registry.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/runner_gate.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

namespace fs = std::filesystem;
using ::llama::testing::StoriesTokenizer;

constexpr int kVocab = 512;

// Fake model: the next token depends on the last token and its position only.
int NextToken(int token, int pos) { return 3 + (token * 7 + pos * 13) % 500; }

std::vector<int> Reference(const std::vector<int>& prompt, int steps) {
  std::vector<int> out;
  int last = prompt.back(), pos = static_cast<int>(prompt.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    last = NextToken(last, pos++);
    out.push_back(last);
  }
  return out;
}

// Shared gate so a test can hold every fake runner's next call.
using Gate = ::llama::testing::RunnerGate;

class FakeRunner : public ModelRunner {
 public:
  explicit FakeRunner(Gate* gate) : gate_(gate) {
    config_.vocab_size = kVocab;
    config_.max_position_embeddings = 256;
  }
  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return 2; }
  int max_context() const override { return 256; }
  std::string device_name() const override { return "fake"; }
  size_t memory_bytes() const override { return 1234; }
  absl::Status Prefill(int, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool) override {
    gate_->Pass();
    Write(tokens.back(), start_pos + static_cast<int>(tokens.size()) - 1, logits);
    return absl::OkStatus();
  }
  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    gate_->Pass();
    for (size_t i = 0; i < slots.size(); ++i) {
      Write(tokens[i], positions[i], logits.subspan(i * kVocab, kVocab));
    }
    return absl::OkStatus();
  }

 private:
  static void Write(int token, int pos, absl::Span<float> logits) {
    std::fill(logits.begin(), logits.begin() + kVocab, 0.0f);
    logits[NextToken(token, pos)] = 1.0f;
  }
  Gate* gate_;
  ModelConfig config_;
};

ModelLoader FakeLoader(Gate* gate) {
  return [gate]() -> absl::StatusOr<LoadedModel> {
    LoadedModel m;
    m.runner = std::make_unique<FakeRunner>(gate);
    m.tokenizer = StoriesTokenizer();
    m.eos_ids = {2};
    return m;
  };
}

ModelLoader FailingLoader(const std::string& why) {
  return [why]() -> absl::StatusOr<LoadedModel> { return absl::DataLossError(why); };
}

GenerationRequest Greedy(std::vector<int> prompt, int n) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.params.max_new_tokens = n;
  return r;
}

std::vector<int> ReadAll(RequestHandle& h, absl::Status* status = nullptr) {
  std::vector<int> out;
  StreamChunk c;
  for (int i = 0; i < 10000 && h.Next(&c); ++i) {
    out.insert(out.end(), c.tokens.begin(), c.tokens.end());
  }
  if (status != nullptr) *status = h.status();
  return out;
}

VariantState StateOf(const VariantRegistry& reg, const std::string& name) {
  auto info = reg.Get(name);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? info->state : VariantState::kAbsent;
}

TEST(RegistryTest, NamesAliasesAndRoutingErrors) {
  VariantRegistry reg;
  ASSERT_TRUE(reg.Register({"main", "TheBloke/Llama-2-7b-Chat-GPTQ", "", {"4bit"}, "", ""}).ok());
  EXPECT_EQ(reg.Register({"main", "x", "", {}, "", ""}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(reg.Register({"other", "x", "", {"4bit"}, "", ""}).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(reg.Register({"", "x", "", {}, "", ""}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*reg.Resolve("4bit"), "main");
  EXPECT_EQ(reg.Resolve("nope").status().code(), absl::StatusCode::kNotFound);
  auto info = reg.Get("4bit");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->branch, "main");
  EXPECT_EQ(info->repo, "TheBloke/Llama-2-7b-Chat-GPTQ");
  EXPECT_EQ(info->state, VariantState::kAbsent);

  EXPECT_EQ(reg.Acquire("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reg.Acquire("").status().code(), absl::StatusCode::kNotFound);
  auto not_ready = reg.Acquire("main");
  EXPECT_EQ(not_ready.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(not_ready.status().message().find("absent"), std::string::npos) << not_ready.status();

  EXPECT_EQ(reg.SetDefault("nope").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(reg.SetDefault("4bit").ok());
  EXPECT_EQ(reg.default_name(), "main");
  EXPECT_TRUE(reg.Get("main")->is_default);
  EXPECT_EQ(reg.Acquire("").status().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(reg.AddAlias("main", "q4").ok());
  EXPECT_EQ(*reg.Resolve("q4"), "main");
  ASSERT_TRUE(reg.Register({"gptq-4bit-32g-actorder_True", "r", "", {}, "", ""}).ok());
  EXPECT_EQ(reg.AddAlias("gptq-4bit-32g-actorder_True", "q4").code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<VariantInfo> all = reg.List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "gptq-4bit-32g-actorder_True");
  EXPECT_EQ(all[1].name, "main");
}

TEST(RegistryTest, LifecycleStatesReachTheListener) {
  VariantRegistry reg;
  std::vector<VariantState> seen;
  reg.SetListener([&](const VariantInfo& i) {
    if (seen.empty() || seen.back() != i.state) seen.push_back(i.state);
  });
  Gate gate;
  ASSERT_TRUE(reg.Register({"main", "repo", "", {}, "", ""}).ok());
  ASSERT_TRUE(reg.BeginFetch("main", "c1").ok());
  EXPECT_EQ(reg.BeginFetch("main").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(reg.ReportFetchProgress("main", 50, 100).ok());
  EXPECT_EQ(reg.Get("main")->fetch_bytes_done, 50);
  ASSERT_TRUE(reg.FetchDone("main", "c1", "/snap/c1").ok());
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kFetched);
  ASSERT_TRUE(reg.LoadWith("main", "/snap/c1", "c1", FakeLoader(&gate), {}).ok());
  auto info = reg.Get("main");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, VariantState::kReady);
  EXPECT_TRUE(info->serving);
  EXPECT_EQ(info->commit, "c1");
  EXPECT_EQ(info->snapshot_dir, "/snap/c1");
  EXPECT_EQ(info->device, "fake");
  EXPECT_EQ(info->memory_bytes, 1234u);
  EXPECT_EQ(reg.Remove("main").code(), absl::StatusCode::kFailedPrecondition);

  auto sched = reg.Acquire("main");
  ASSERT_TRUE(sched.ok()) << sched.status();
  auto h = (*sched)->Submit(Greedy({1, 5}, 6));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ReadAll(**h), Reference({1, 5}, 6));
  sched->reset();

  ASSERT_TRUE(reg.Unload("main").ok());
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kFetched);  // nobody held it
  EXPECT_EQ(reg.Unload("main").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(reg.Remove("main").ok());
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kAbsent);
  ASSERT_TRUE(reg.Forget("main").ok());
  EXPECT_EQ(reg.Get("main").status().code(), absl::StatusCode::kNotFound);

  const std::vector<VariantState> want = {
      VariantState::kAbsent,  VariantState::kFetching,  VariantState::kFetched,
      VariantState::kLoading, VariantState::kReady,     VariantState::kUnloading,
      VariantState::kFetched, VariantState::kAbsent};
  EXPECT_EQ(seen, want);
}

TEST(RegistryTest, FailedLoadKeepsThePreviousCopyServing) {
  VariantRegistry reg;
  Gate gate;
  ASSERT_TRUE(reg.Register({"main", "repo", "", {}, "", ""}).ok());
  ASSERT_TRUE(reg.LoadWith("main", "/snap/a", "a", FakeLoader(&gate), {}).ok());
  auto before = reg.Acquire("main");
  ASSERT_TRUE(before.ok());

  absl::Status s = reg.LoadWith("main", "/snap/b", "b", FailingLoader("model.safetensors torn"), {});
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("torn"), std::string::npos) << s;
  EXPECT_NE(s.message().find("main"), std::string::npos) << s;

  auto info = reg.Get("main");
  EXPECT_EQ(info->state, VariantState::kReady);
  EXPECT_EQ(info->commit, "a");
  EXPECT_NE(info->error.find("torn"), std::string::npos) << info->error;
  auto after = reg.Acquire("main");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->get(), before->get());
  auto h = (*after)->Submit(Greedy({1, 9}, 4));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ReadAll(**h), Reference({1, 9}, 4));

  // A variant with no previous copy goes to failed, and says why.
  ASSERT_TRUE(reg.Register({"other", "repo", "", {}, "", ""}).ok());
  EXPECT_FALSE(reg.LoadWith("other", "/snap/x", "x", FailingLoader("bad header"), {}).ok());
  EXPECT_EQ(StateOf(reg, "other"), VariantState::kFailed);
  auto acq = reg.Acquire("other");
  EXPECT_EQ(acq.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(acq.status().message().find("failed"), std::string::npos) << acq.status();
  EXPECT_NE(acq.status().message().find("bad header"), std::string::npos) << acq.status();
  // Other variants were never disturbed.
  EXPECT_TRUE(reg.Acquire("main").ok());
}

TEST(RegistryTest, NewCommitSwapsOnlyWhenReady) {
  VariantRegistry reg;
  Gate gate;
  ASSERT_TRUE(reg.Register({"main", "repo", "", {}, "", ""}).ok());
  ASSERT_TRUE(reg.LoadWith("main", "/snap/a", "a", FakeLoader(&gate), {}).ok());
  auto old_sched = *reg.Acquire("main");

  absl::Notification loader_entered, loader_release;
  ModelLoader slow = [&]() -> absl::StatusOr<LoadedModel> {
    loader_entered.Notify();
    loader_release.WaitForNotification();
    return FakeLoader(&gate)();
  };
  absl::Status load_status;
  std::thread loader([&] { load_status = reg.LoadWith("main", "/snap/b", "b", slow, {}); });
  loader_entered.WaitForNotification();
  auto mid = reg.Get("main");
  EXPECT_EQ(mid->state, VariantState::kLoading);
  EXPECT_EQ(mid->commit, "a");
  EXPECT_EQ(mid->pending_commit, "b");
  EXPECT_EQ(reg.Acquire("main")->get(), old_sched.get()) << "old copy serves while loading";
  EXPECT_EQ(reg.LoadWith("main", "/snap/c", "c", FakeLoader(&gate), {}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reg.Unload("main").code(), absl::StatusCode::kFailedPrecondition);
  loader_release.Notify();
  loader.join();
  ASSERT_TRUE(load_status.ok()) << load_status;

  auto now = reg.Acquire("main");
  ASSERT_TRUE(now.ok());
  EXPECT_NE(now->get(), old_sched.get());
  EXPECT_EQ(reg.Get("main")->commit, "b");
  // The replaced copy still finishes what it was given.
  auto h = old_sched->Submit(Greedy({1, 3}, 5));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(ReadAll(**h), Reference({1, 3}, 5));
  old_sched.reset();
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kReady);
}

TEST(RegistryTest, UnloadLetsRunningStreamsFinish) {
  VariantRegistry reg;
  Gate gate;
  ASSERT_TRUE(reg.Register({"main", "repo", "", {}, "", "/snap/a"}).ok());
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kFetched);
  ASSERT_TRUE(reg.LoadWith("main", "", "a", FakeLoader(&gate), {}).ok());
  auto sched = *reg.Acquire("main");
  gate.Close();
  auto h = sched->Submit(Greedy({1, 4}, 20));
  ASSERT_TRUE(h.ok());
  gate.WaitUntilBlocked();

  ASSERT_TRUE(reg.Unload("main").ok());
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kUnloading);
  auto refused = reg.Acquire("main");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("unloading"), std::string::npos) << refused.status();
  EXPECT_EQ(sched->Submit(Greedy({1, 4}, 2)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reg.Remove("main").code(), absl::StatusCode::kFailedPrecondition);

  gate.Open();
  absl::Status st;
  EXPECT_EQ(ReadAll(**h, &st), Reference({1, 4}, 20));
  EXPECT_TRUE(st.ok()) << st;
  sched.reset();  // the last holder lets go
  EXPECT_EQ(StateOf(reg, "main"), VariantState::kFetched);
}

// ------------------------------------------------------------------ real fixtures

std::vector<std::string> Branches() {
  std::vector<std::string> out;
  for (const std::string& m : testing::AllModels()) {
    if (m != "fp32") out.push_back(m);
  }
  return out;
}

RunnerOptions SmallRunner() {
  RunnerOptions ro;
  ro.max_slots = 2;
  ro.threads = 1;
  return ro;
}

struct GreedyCase {
  std::vector<int> prompt, expected;
};
GreedyCase OnceUponATime(const std::string& model) {
  const std::vector<int> full =
      testing::References()[model]["greedy_once_upon_a_time_32"].get<std::vector<int>>();
  return {std::vector<int>(full.begin(), full.begin() + 5),
          std::vector<int>(full.begin() + 5, full.end())};
}

TEST(RegistryCpuTest, AllFourBranchesServeAtOnce) {
  VariantRegistry reg;
  const std::vector<std::string> branches = Branches();
  ASSERT_EQ(branches.size(), 4u);
  for (const std::string& b : branches) {
    ASSERT_TRUE(reg.Register({b, "TheBloke/Llama-2-7b-Chat-GPTQ", "", {}, "fixture",
                              testing::ModelDir(b)})
                    .ok());
    auto info = reg.Get(b);
    EXPECT_EQ(info->state, VariantState::kFetched);
    EXPECT_TRUE(info->quant.has_value()) << b << ": quant settings known from the snapshot";
  }
  // Load all four concurrently: loads run off the registry lock.
  std::vector<absl::Status> loaded(branches.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < branches.size(); ++i) {
    threads.emplace_back([&, i] {
      loaded[i] = reg.Load(branches[i], "", "fixture", Backend::kCpu, SmallRunner(), {});
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < branches.size(); ++i) {
    ASSERT_TRUE(loaded[i].ok()) << branches[i] << ": " << loaded[i];
    auto info = reg.Get(branches[i]);
    EXPECT_EQ(info->state, VariantState::kReady);
    EXPECT_EQ(info->device, "cpu");
    EXPECT_GT(info->memory_bytes, 0u);
    ASSERT_TRUE(info->quant.has_value()) << branches[i];
    const int want_group = branches[i] == "main" ? 128
                           : branches[i].find("32g") != std::string::npos ? 32
                           : branches[i].find("64g") != std::string::npos ? 64 : 128;
    EXPECT_EQ(info->quant->group_size, want_group) << branches[i];
    EXPECT_EQ(info->quant->desc_act, branches[i] != "main") << branches[i];
  }
  // One stream per branch, all at once.
  std::vector<std::shared_ptr<Scheduler>> scheds;
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const std::string& b : branches) {
    auto s = reg.Acquire(b);
    ASSERT_TRUE(s.ok()) << s.status();
    GreedyCase g = OnceUponATime(b);
    auto h = (*s)->Submit(Greedy(g.prompt, static_cast<int>(g.expected.size())));
    ASSERT_TRUE(h.ok()) << h.status();
    scheds.push_back(*s);
    handles.push_back(*h);
  }
  for (size_t i = 0; i < branches.size(); ++i) {
    absl::Status st;
    EXPECT_EQ(ReadAll(*handles[i], &st), OnceUponATime(branches[i]).expected) << branches[i];
    EXPECT_TRUE(st.ok()) << st;
  }
}

// Copies a fixture branch into a fresh temp dir with model.safetensors cut in half.
std::string CorruptCopy(const std::string& branch) {
  const fs::path dir = fs::path(::testing::TempDir()) /
                       absl::StrCat("registry_corrupt_", branch, "_", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(testing::ModelDir(branch))) {
    fs::copy_file(e.path(), dir / e.path().filename());
  }
  const fs::path model = dir / "model.safetensors";
  fs::resize_file(model, fs::file_size(model) / 2);
  return dir.string();
}

TEST(RegistryCpuTest, CorruptLoadLeavesTheOldCopyServing) {
  VariantRegistry reg;
  ASSERT_TRUE(reg.Register({"main", "repo", "", {}, "good", testing::ModelDir("main")}).ok());
  ASSERT_TRUE(reg.Load("main", "", "good", Backend::kCpu, SmallRunner(), {}).ok());
  const std::string bad_dir = CorruptCopy("main");
  absl::Status s = reg.Load("main", bad_dir, "bad", Backend::kCpu, SmallRunner(), {});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(bad_dir), std::string::npos) << s;
  auto info = reg.Get("main");
  EXPECT_EQ(info->state, VariantState::kReady);
  EXPECT_EQ(info->commit, "good");
  EXPECT_FALSE(info->error.empty());

  auto sched = reg.Acquire("main");
  ASSERT_TRUE(sched.ok()) << sched.status();
  GreedyCase g = OnceUponATime("main");
  auto h = (*sched)->Submit(Greedy(g.prompt, static_cast<int>(g.expected.size())));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ReadAll(**h), g.expected);
  fs::remove_all(bad_dir);
}

TEST(RegistryCpuTest, UnloadWhileAStreamRunsLetsItFinish) {
  VariantRegistry reg;
  const std::string a = "gptq-4bit-32g-actorder_True", b = "main";
  for (const std::string& n : {a, b}) {
    ASSERT_TRUE(reg.Register({n, "repo", "", {}, "fixture", testing::ModelDir(n)}).ok());
    ASSERT_TRUE(reg.Load(n, "", "fixture", Backend::kCpu, SmallRunner(), {}).ok());
  }
  ASSERT_TRUE(reg.SetDefault(b).ok());
  auto sched = reg.Acquire(a);
  ASSERT_TRUE(sched.ok());
  GreedyCase g = OnceUponATime(a);
  auto h = (*sched)->Submit(Greedy(g.prompt, static_cast<int>(g.expected.size())));
  ASSERT_TRUE(h.ok());
  StreamChunk first;
  ASSERT_TRUE((*h)->Next(&first));
  ASSERT_TRUE(reg.Unload(a).ok());
  EXPECT_EQ(reg.Acquire(a).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(reg.Acquire("").ok()) << "the default variant keeps serving";

  absl::Status st;
  std::vector<int> got = first.tokens;
  std::vector<int> rest = ReadAll(**h, &st);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(got, g.expected);
  sched->reset();
  EXPECT_EQ(StateOf(reg, a), VariantState::kFetched);
}

}  // namespace
}  // namespace llama
