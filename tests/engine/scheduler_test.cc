// Scheduler: queueing and continuous batching against a tiny deterministic fake ModelRunner
// (tests/engine/fake_runner.h): streams, chunked prefill, who picks the tokens. Errors,
// cancellation and shutdown are in scheduler_errors_test.cc; the real stories260K fixtures
// on the CPU backend in scheduler_cpu_test.cc.
#include "engine/scheduler.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/engine/fake_runner.h"
#include "tests/engine/scheduler_test_util.h"

namespace llama {
namespace {

using ::llama::testing::Collect;
using ::llama::testing::Collected;
using ::llama::testing::Greedy;
using ::llama::testing::Reference;
using ::llama::testing::SchedulerFakeTest;

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
  // a alone first, held in its prefill: b, g and p then queue behind the closed gate and are
  // admitted in one iteration, so b and g decode in lockstep (a one step ahead) and no step
  // is left with g alone. Submitted back to back instead, the worker could wake between two
  // submits and admit g a step after the sampled rows (a flake seen once under load).
  auto a = sched_->Submit(sampled({1, 40, 41}, 1.5f, 0, 1.0f, 17, false));
  runner_->WaitUntilBlocked();
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


}  // namespace
}  // namespace llama
