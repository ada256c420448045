// Scheduler: queueing, continuous batching, cancellation and error semantics against a
// tiny deterministic fake ModelRunner. The real stories260K fixtures on the CPU backend
// are in scheduler_cpu_test.cc.
#include "engine/scheduler.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/runner.h"
#include "engine/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/runner_gate.h"
#include "tests/engine/scheduler_test_util.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using ::llama::testing::Collect;
using ::llama::testing::Collected;
using ::llama::testing::Greedy;
using ::llama::testing::StoriesTokenizer;

constexpr int kVocab = 512;  // stories260K tokenizer size: fake ids decode to real pieces

// The fake's "model": the next token is a function of every token in the slot's cache
// up to the current position, so wrong positions, slots or prefill chunks change the
// output. Never 0..2 (unk/bos/eos).
int NextToken(const std::vector<int>& context) {
  int64_t sum = 0;
  for (size_t i = 0; i < context.size(); ++i) sum += context[i] * static_cast<int64_t>(i + 1);
  return 3 + static_cast<int>(sum % 500);
}

std::vector<int> Reference(std::vector<int> prompt, int steps) {
  std::vector<int> out;
  for (int i = 0; i < steps; ++i) {
    int t = NextToken(prompt);
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

class FakeRunner : public ModelRunner {
 public:
  FakeRunner(int slots, int context) : slots_(slots), context_(context) {
    config_.vocab_size = kVocab;
    config_.max_position_embeddings = context;
    cache_.assign(slots, std::vector<int>(context, -1));
  }

  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return slots_; }
  int max_context() const override { return context_; }
  std::string device_name() const override { return "fake"; }
  size_t memory_bytes() const override { return 1234; }

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool all_logits) override {
    gate_.Pass();
    absl::MutexLock lock(&mu_);
    ++prefill_calls_;
    calls_ += 'P';
    max_prefill_len_ = std::max<int>(max_prefill_len_, tokens.size());
    if (all_logits) return absl::UnimplementedError("fake: all_logits");
    for (int32_t t : tokens) {
      if (t == poison_prefill_) return absl::InternalError("fake: poisoned prompt token");
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (absl::Status s = Put(slot, start_pos + static_cast<int>(i), tokens[i]); !s.ok()) {
        return s;
      }
    }
    return WriteLogits(slot, start_pos + static_cast<int>(tokens.size()) - 1, logits);
  }

  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    gate_.Pass();
    absl::MutexLock lock(&mu_);
    ++decode_calls_;
    calls_ += 'D';
    max_batch_ = std::max<int>(max_batch_, slots.size());
    if (slots.size() != positions.size() || slots.size() != tokens.size() ||
        logits.size() != slots.size() * kVocab) {
      return absl::InvalidArgumentError("fake: decode shapes disagree");
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (slots[i] == slots[j]) return absl::InvalidArgumentError("fake: slot twice in batch");
      }
      if (absl::Status s = Put(slots[i], positions[i], tokens[i]); !s.ok()) return s;
      if (absl::Status s = WriteLogits(slots[i], positions[i], logits.subspan(i * kVocab, kVocab));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // Greedy batches: recorded ('A' with run_ahead, 'a' without), then the default (Decode +
  // argmax), so `calls` still shows the 'D'.
  absl::Status DecodeArgmax(absl::Span<const int> slots, absl::Span<const int> positions,
                            absl::Span<const int32_t> tokens, absl::Span<int32_t> out_ids,
                            bool run_ahead) override {
    {
      absl::MutexLock lock(&mu_);
      argmax_calls_ += run_ahead ? 'A' : 'a';
    }
    return ModelRunner::DecodeArgmax(slots, positions, tokens, out_ids, run_ahead);
  }
  std::string argmax_calls() const {
    absl::MutexLock lock(&mu_);
    return argmax_calls_;
  }
  // Batches the runner samples: recorded ('S' with run_ahead, 's' without) with their largest
  // batch, then the default (Decode + the host rule).
  absl::Status DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                             absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                             absl::Span<int32_t> out_ids, bool run_ahead) override {
    {
      absl::MutexLock lock(&mu_);
      sampled_calls_ += run_ahead ? 'S' : 's';
      max_sampled_batch_ = std::max<int>(max_sampled_batch_, rows.size());
    }
    return ModelRunner::DecodeSampled(slots, positions, tokens, rows, out_ids, run_ahead);
  }
  std::string sampled_calls() const {
    absl::MutexLock lock(&mu_);
    return sampled_calls_;
  }
  int max_sampled_batch() const {
    absl::MutexLock lock(&mu_);
    return max_sampled_batch_;
  }

  // Gate: while closed, every Prefill/Decode call blocks until opened (see RunnerGate).
  void Close() { gate_.Close(); }
  void Open() { gate_.Open(); }
  void Allow(int n) { gate_.Allow(n); }
  void WaitUntilBlocked() { gate_.WaitUntilBlocked(); }

  void set_poison_prefill(int t) {
    absl::MutexLock lock(&mu_);
    poison_prefill_ = t;
  }
  int max_batch() const {
    absl::MutexLock lock(&mu_);
    return max_batch_;
  }
  int max_prefill_len() const {
    absl::MutexLock lock(&mu_);
    return max_prefill_len_;
  }
  std::string calls() const {  // 'P' prefill, 'D' decode, in order
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int decode_calls() const {
    absl::MutexLock lock(&mu_);
    return decode_calls_;
  }

 private:
  absl::Status Put(int slot, int pos, int token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (slot < 0 || slot >= slots_) return absl::InvalidArgumentError("fake: bad slot");
    if (pos < 0 || pos >= context_) {
      return absl::InvalidArgumentError(absl::StrCat("fake: position ", pos, " out of context"));
    }
    if (pos > 0 && cache_[slot][pos - 1] < 0) {
      return absl::FailedPreconditionError(absl::StrCat("fake: hole before position ", pos));
    }
    if (pos == 0) std::fill(cache_[slot].begin(), cache_[slot].end(), -1);  // new sequence
    cache_[slot][pos] = token;
    return absl::OkStatus();
  }

  absl::Status WriteLogits(int slot, int pos, absl::Span<float> logits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (logits.size() < static_cast<size_t>(kVocab)) {
      return absl::InvalidArgumentError("fake: logits too small");
    }
    std::vector<int> ctx(cache_[slot].begin(), cache_[slot].begin() + pos + 1);
    std::fill(logits.begin(), logits.begin() + kVocab, 0.0f);
    logits[NextToken(ctx)] = 10.0f;
    return absl::OkStatus();
  }

  ModelConfig config_;
  const int slots_, context_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<int>> cache_ ABSL_GUARDED_BY(mu_);
  int poison_prefill_ ABSL_GUARDED_BY(mu_) = -1;
  int prefill_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int decode_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int max_batch_ ABSL_GUARDED_BY(mu_) = 0;
  int max_prefill_len_ ABSL_GUARDED_BY(mu_) = 0;
  std::string calls_ ABSL_GUARDED_BY(mu_);
  std::string argmax_calls_ ABSL_GUARDED_BY(mu_);
  std::string sampled_calls_ ABSL_GUARDED_BY(mu_);
  int max_sampled_batch_ ABSL_GUARDED_BY(mu_) = 0;
  ::llama::testing::RunnerGate gate_;
};

class SchedulerFakeTest : public ::testing::Test {
 protected:
  void Make(int slots, int context, SchedulerOptions opts = {}) {
    ASSERT_NE(StoriesTokenizer(), nullptr);
    auto r = std::make_unique<FakeRunner>(slots, context);
    runner_ = r.get();
    sched_ = std::make_unique<Scheduler>(std::move(r), StoriesTokenizer(), std::move(opts));
  }
  FakeRunner* runner_ = nullptr;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerFakeTest, StreamsMatchReferenceWithChunkedPrefill) {
  SchedulerOptions opts;
  opts.prefill_chunk = 3;
  Make(4, 128, opts);
  const std::vector<std::vector<int>> prompts = {
      {1}, {1, 10, 11, 12, 13}, {1, 20, 21, 22, 23, 24, 25}, {1, 30, 31, 32, 33, 34, 35, 36, 37, 38}};
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const auto& p : prompts) {
    auto h = sched_->Submit(Greedy(p, 12));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected c = Collect(*handles[i]);
    EXPECT_TRUE(c.status.ok()) << c.status;
    EXPECT_EQ(c.tokens, Reference(prompts[i], 12)) << "stream " << i;
    EXPECT_EQ(c.finish, FinishReason::kLength);
    ASSERT_FALSE(c.chunks.empty());
    EXPECT_EQ(c.chunks.back().prompt_tokens, static_cast<int>(prompts[i].size()));
    EXPECT_EQ(c.chunks.back().completion_tokens, 12);
    for (size_t k = 0; k + 1 < c.chunks.size(); ++k) {
      EXPECT_EQ(c.chunks[k].finish, FinishReason::kNone) << "only the last chunk finishes";
    }
  }
  EXPECT_LE(runner_->max_prefill_len(), 3);
  SchedulerStats s = sched_->stats();
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.tokens_generated, 4 * 12);
  EXPECT_EQ(s.requests_completed, 4);
}

// Greedy requests decode through DecodeArgmax, asking for a step ahead except on their last
// step; a sampled request through DecodeSampled, one that needs the host (logprobs) through
// Decode and the host sampler.
TEST_F(SchedulerFakeTest, GreedyBatchesLetTheRunnerPickAndRunAhead) {
  Make(2, 128);
  auto h = sched_->Submit(Greedy({1, 10, 11}, 4));
  ASSERT_TRUE(h.ok()) << h.status();
  Collected c = Collect(**h);
  EXPECT_TRUE(c.status.ok()) << c.status;
  EXPECT_EQ(c.tokens, Reference({1, 10, 11}, 4));
  // The first token comes from the prefill; three decode steps, the last without a step ahead.
  EXPECT_EQ(runner_->argmax_calls(), "AAa");
  EXPECT_EQ(runner_->calls(), "PDDD");

  GenerationRequest sampled = Greedy({1, 20}, 3);
  sampled.params.temperature = 0.7f;
  sampled.params.seed = 5;
  h = sched_->Submit(std::move(sampled));
  ASSERT_TRUE(h.ok()) << h.status();
  c = Collect(**h);
  EXPECT_TRUE(c.status.ok()) << c.status;
  EXPECT_EQ(c.tokens.size(), 3u);
  EXPECT_EQ(runner_->argmax_calls(), "AAa") << "no DecodeArgmax for a sampled request";
  EXPECT_EQ(runner_->sampled_calls(), "Ss");
  EXPECT_EQ(runner_->calls(), "PDDDPDD");

  GenerationRequest host = Greedy({1, 30}, 3);
  host.params.temperature = 0.7f;
  host.params.logprobs = true;
  h = sched_->Submit(std::move(host));
  ASSERT_TRUE(h.ok()) << h.status();
  c = Collect(**h);
  EXPECT_TRUE(c.status.ok()) << c.status;
  EXPECT_EQ(c.tokens.size(), 3u);
  EXPECT_EQ(runner_->sampled_calls(), "Ss") << "logprobs are the host's";
  EXPECT_EQ(runner_->calls(), "PDDDPDDPDD");
}

// A sampled request: its tokens are the same whether its steps are picked by the runner
// (DecodeSampled, batched with a greedy request) or by the host (a request needing the host
// in the batch forces plain Decode for a while), because host and runner draw the same
// numbers (SampleUniform(seed, t)) and count every draw.
TEST_F(SchedulerFakeTest, SampledTokensDoNotDependOnWhoPicksThem) {
  auto sampled = [](std::vector<int> prompt, float t, int top_k, float top_p, uint64_t seed, bool host) {
    GenerationRequest r = Greedy(std::move(prompt), 24);
    r.params.temperature = t;
    r.params.top_k = top_k;
    r.params.top_p = top_p;
    r.params.seed = seed;
    r.params.logprobs = host;  // does not change the tokens, only who picks them
    return r;
  };
  SchedulerOptions opts;
  opts.eos_ids = {-1};  // sampled ids may be 2
  // Alone, on the host: the reference streams.
  std::vector<std::vector<int>> want;
  for (int i = 0; i < 2; ++i) {
    Make(1, 128, opts);
    auto h = sched_->Submit(i == 0 ? sampled({1, 40, 41}, 1.5f, 0, 1.0f, 17, true)
                                   : sampled({1, 50}, 2.0f, 3, 0.9f, 23, true));
    ASSERT_TRUE(h.ok()) << h.status();
    Collected c = Collect(**h);
    ASSERT_TRUE(c.status.ok()) << c.status;
    ASSERT_EQ(c.tokens.size(), 24u);
    want.push_back(c.tokens);
    EXPECT_EQ(runner_->sampled_calls(), "");
  }
  EXPECT_NE(want[0], Reference({1, 40, 41}, 24)) << "the sampled stream should not be the argmax";
  // Together with a greedy request (runner picks every row), and with a request that needs the
  // host for its first 6 tokens (plain Decode meanwhile).
  Make(4, 128, opts);
  runner_->Close();
  auto a = sched_->Submit(sampled({1, 40, 41}, 1.5f, 0, 1.0f, 17, false));
  auto b = sched_->Submit(sampled({1, 50}, 2.0f, 3, 0.9f, 23, false));
  auto g = sched_->Submit(Greedy({1, 60, 61, 62}, 24));
  GenerationRequest pen = Greedy({1, 70}, 6);
  pen.params.repetition_penalty = 1.3f;
  auto p = sched_->Submit(std::move(pen));
  ASSERT_TRUE(a.ok() && b.ok() && g.ok() && p.ok());
  runner_->Open();
  Collected ca = Collect(**a), cb = Collect(**b), cg = Collect(**g), cp = Collect(**p);
  ASSERT_TRUE(ca.status.ok() && cb.status.ok() && cg.status.ok() && cp.status.ok());
  EXPECT_EQ(ca.tokens, want[0]);
  EXPECT_EQ(cb.tokens, want[1]);
  EXPECT_EQ(cg.tokens, Reference({1, 60, 61, 62}, 24));
  EXPECT_EQ(cp.tokens.size(), 6u);
  EXPECT_NE(runner_->sampled_calls(), "");
  EXPECT_EQ(runner_->max_sampled_batch(), 3) << "greedy and sampled rows in one DecodeSampled";
  EXPECT_EQ(runner_->argmax_calls(), "") << "never an all-greedy batch";
}

TEST_F(SchedulerFakeTest, FourStreamsInterleave) {
  std::vector<std::string> events;
  absl::Mutex ev_mu;
  SchedulerOptions opts;
  opts.hooks.on_first_token = [&](const std::string& id, absl::Duration) {
    absl::MutexLock l(&ev_mu);
    events.push_back("first " + id);
  };
  opts.hooks.on_finish = [&](const std::string& id, FinishReason, const absl::Status&, int, int) {
    absl::MutexLock l(&ev_mu);
    events.push_back("finish " + id);
  };
  Make(4, 128, opts);
  runner_->Close();
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 4; ++i) {
    auto h = sched_->Submit(Greedy({1, 40 + i}, 16, absl::StrCat(i)));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  runner_->WaitUntilBlocked();
  runner_->Open();
  for (int i = 0; i < 4; ++i) {
    Collected c = Collect(*handles[i]);
    EXPECT_EQ(c.tokens, Reference({1, 40 + i}, 16));
  }
  absl::MutexLock l(&ev_mu);
  ASSERT_EQ(events.size(), 8u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i].rfind("first ", 0), 0u) << "event " << i << " is " << events[i]
                                                << ": a stream finished before all started";
  }
  EXPECT_EQ(runner_->max_batch(), 4) << "all four streams share one Decode per step";
  // 16 tokens each: ~16 batched steps, not 64 one-by-one.
  EXPECT_LE(runner_->decode_calls(), 20);
}

TEST_F(SchedulerFakeTest, LongPromptPrefillsBetweenDecodeSteps) {
  SchedulerOptions opts;
  opts.prefill_chunk = 4;
  Make(2, 256, opts);
  runner_->Close();
  auto a = sched_->Submit(Greedy({1, 5}, 50));
  ASSERT_TRUE(a.ok());
  runner_->WaitUntilBlocked();  // a's prefill: a is admitted alone
  std::vector<int> long_prompt(100, 7);
  long_prompt[0] = 1;
  auto b = sched_->Submit(Greedy(long_prompt, 3));
  ASSERT_TRUE(b.ok());
  runner_->Open();
  EXPECT_EQ(Collect(**b).tokens, Reference(long_prompt, 3));
  EXPECT_EQ(Collect(**a).tokens, Reference({1, 5}, 50));
  const std::string calls = runner_->calls();
  // a's prefill, then b's 25 chunks of 4, each followed by a decode step for a.
  EXPECT_EQ(std::count(calls.begin(), calls.end(), 'P'), 1 + 25) << calls;
  EXPECT_EQ(calls.find("PP"), std::string::npos) << "a prompt chunk never follows another "
                                                    "without a decode step between: " << calls;
  EXPECT_LE(runner_->max_prefill_len(), 4);
}

TEST_F(SchedulerFakeTest, QueueFullIsResourceExhausted) {
  SchedulerOptions opts;
  opts.max_queue = 2;
  Make(1, 64, opts);
  runner_->Close();
  auto a = sched_->Submit(Greedy({1, 5}, 4));
  ASSERT_TRUE(a.ok());
  runner_->WaitUntilBlocked();  // a holds the only slot
  auto b = sched_->Submit(Greedy({1, 6}, 4));
  auto c = sched_->Submit(Greedy({1, 7}, 4));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(c.ok());
  auto d = sched_->Submit(Greedy({1, 8}, 4));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted) << d.status();
  SchedulerStats s = sched_->stats();
  EXPECT_EQ(s.queued, 2);
  EXPECT_EQ(s.active, 1);
  runner_->Open();
  EXPECT_EQ(Collect(**a).tokens, Reference({1, 5}, 4));
  EXPECT_EQ(Collect(**b).tokens, Reference({1, 6}, 4));
  EXPECT_EQ(Collect(**c).tokens, Reference({1, 7}, 4));
  s = sched_->stats();
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
}

TEST_F(SchedulerFakeTest, InvalidRequests) {
  Make(2, 16);
  EXPECT_EQ(sched_->Submit(Greedy({}, 4)).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<int> too_long(16, 5);
  auto s = sched_->Submit(Greedy(too_long, 4));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("context"), std::string::npos) << s.status();
  EXPECT_EQ(sched_->Submit(Greedy({1, kVocab}, 4)).status().code(),
            absl::StatusCode::kInvalidArgument);
  GenerationRequest bad = Greedy({1, 5}, 4);
  bad.params.temperature = -1.0f;
  EXPECT_EQ(sched_->Submit(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sched_->Submit(Greedy({1, 5}, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sched_->stats().queued, 0);
}

TEST_F(SchedulerFakeTest, ContextLimitFinishesWithLength) {
  Make(1, 16);
  std::vector<int> prompt = {1, 2 + 1, 4, 5, 6, 7, 8, 9, 10, 11};  // 10 tokens
  auto h = sched_->Submit(Greedy(prompt, 100));
  ASSERT_TRUE(h.ok()) << h.status();
  Collected c = Collect(**h);
  EXPECT_TRUE(c.status.ok()) << c.status;
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.tokens, Reference(prompt, 6)) << "prompt + generated fills the 16 positions";
}

TEST_F(SchedulerFakeTest, CancelFreesSlots) {
  Make(2, 512);
  runner_->Close();
  std::vector<std::shared_ptr<RequestHandle>> h;
  for (int i = 0; i < 4; ++i) {
    auto r = sched_->Submit(Greedy({1, 50 + i}, 400, absl::StrCat(i)));
    ASSERT_TRUE(r.ok());
    h.push_back(*r);
  }
  runner_->WaitUntilBlocked();
  h[0]->Cancel();  // active (or about to be)
  h[1]->Cancel();
  h[3]->Cancel();  // still queued: never runs
  runner_->Open();
  for (int i : {0, 1, 3}) {
    Collected c = Collect(*h[i]);
    EXPECT_EQ(c.status.code(), absl::StatusCode::kCancelled) << i << ": " << c.status;
    EXPECT_EQ(c.finish, FinishReason::kCancelled);
    EXPECT_LE(c.tokens.size(), i == 3 ? 0u : 2u) << "cancel is honoured at the next iteration";
  }
  Collected ok = Collect(*h[2]);
  EXPECT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(ok.tokens, Reference({1, 52}, 400));
  SchedulerStats s = sched_->stats();
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.requests_completed, 4);
  // The freed slots serve new requests.
  auto again = sched_->Submit(Greedy({1, 60}, 5));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Collect(**again).tokens, Reference({1, 60}, 5));
}

TEST_F(SchedulerFakeTest, CancelMidStreamFromConsumer) {
  Make(1, 512);
  runner_->Close();
  runner_->Allow(1);  // the prefill: first token
  auto h = sched_->Submit(Greedy({1, 70}, 500));
  ASSERT_TRUE(h.ok());
  StreamChunk chunk;
  ASSERT_TRUE((*h)->Next(&chunk));
  EXPECT_EQ(chunk.tokens, Reference({1, 70}, 1));
  runner_->WaitUntilBlocked();  // the first decode waits at the gate
  (*h)->Cancel();
  runner_->Open();
  Collected rest = Collect(**h);
  EXPECT_LE(rest.tokens.size(), 1u);
  EXPECT_EQ(rest.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(rest.finish, FinishReason::kCancelled);
  EXPECT_EQ(sched_->stats().active, 0);
}

TEST_F(SchedulerFakeTest, DeadlinePassed) {
  Make(1, 64);
  GenerationRequest r = Greedy({1, 9}, 10);
  r.deadline = absl::Now() - absl::Seconds(1);
  auto h = sched_->Submit(std::move(r));
  ASSERT_TRUE(h.ok());
  Collected c = Collect(**h);
  EXPECT_EQ(c.status.code(), absl::StatusCode::kDeadlineExceeded) << c.status;
  EXPECT_TRUE(c.tokens.empty());
}

TEST_F(SchedulerFakeTest, EngineErrorFailsOnlyThatRequest) {
  Make(2, 64);
  runner_->set_poison_prefill(99);
  auto bad = sched_->Submit(Greedy({1, 99}, 5));
  auto good = sched_->Submit(Greedy({1, 98}, 5));
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(good.ok());
  Collected b = Collect(**bad);
  EXPECT_EQ(b.status.code(), absl::StatusCode::kInternal) << b.status;
  EXPECT_NE(b.status.message().find("poisoned"), std::string::npos) << b.status;
  Collected g = Collect(**good);
  EXPECT_TRUE(g.status.ok()) << g.status;
  EXPECT_EQ(g.tokens, Reference({1, 98}, 5));
  EXPECT_EQ(sched_->stats().active, 0);
}

TEST_F(SchedulerFakeTest, EosFinishes) {
  const std::vector<int> prompt = {1, 77};
  const std::vector<int> ref = Reference(prompt, 10);
  SchedulerOptions opts;
  opts.eos_ids = {ref[3]};
  Make(1, 64, opts);
  auto h = sched_->Submit(Greedy(prompt, 10));
  ASSERT_TRUE(h.ok());
  Collected c = Collect(**h);
  EXPECT_EQ(c.finish, FinishReason::kEos);
  const size_t k = std::find(ref.begin(), ref.end(), ref[3]) - ref.begin();  // first hit
  ASSERT_GE(c.tokens.size(), k);
  ASSERT_LE(c.tokens.size(), k + 1) << "at most the eos token itself is reported";
  EXPECT_EQ(std::vector<int>(c.tokens.begin(), c.tokens.begin() + k),
            std::vector<int>(ref.begin(), ref.begin() + k));
}

TEST_F(SchedulerFakeTest, DrainWaitsThenRefuses) {
  Make(2, 64);
  std::vector<std::shared_ptr<RequestHandle>> h;
  for (int i = 0; i < 3; ++i) {
    auto r = sched_->Submit(Greedy({1, 80 + i}, 8));
    ASSERT_TRUE(r.ok());
    h.push_back(*r);
  }
  sched_->Drain();
  SchedulerStats s = sched_->stats();
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(h[i]->done());
    Collected c = Collect(*h[i]);
    EXPECT_TRUE(c.status.ok());
    EXPECT_EQ(c.tokens, Reference({1, 80 + i}, 8));
  }
  EXPECT_EQ(sched_->Submit(Greedy({1, 5}, 4)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerFakeTest, DestructionEndsEveryStream) {
  Make(1, 512);
  runner_->Close();
  auto a = sched_->Submit(Greedy({1, 5}, 500));
  auto b = sched_->Submit(Greedy({1, 6}, 500));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  runner_->WaitUntilBlocked();
  runner_->Open();
  sched_.reset();
  for (auto* h : {&*a, &*b}) {
    Collected c = Collect(**h);
    EXPECT_TRUE(c.status.ok() || absl::IsCancelled(c.status)) << c.status;
    EXPECT_TRUE((*h)->done());
  }
}

TEST_F(SchedulerFakeTest, NextForTimesOutWithoutEnding) {
  Make(1, 64);
  runner_->Close();
  auto h = sched_->Submit(Greedy({1, 5}, 3));
  ASSERT_TRUE(h.ok());
  StreamChunk chunk;
  bool ended = true;
  EXPECT_FALSE((*h)->NextFor(&chunk, absl::Milliseconds(1), &ended));
  EXPECT_FALSE(ended);
  runner_->Open();
  Collected c = Collect(**h);
  EXPECT_EQ(c.tokens, Reference({1, 5}, 3));
  EXPECT_FALSE((*h)->NextFor(&chunk, absl::Milliseconds(1), &ended));
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace llama
