// Scheduler: error semantics, cancellation, deadlines and shutdown against the fake
// ModelRunner of tests/engine/fake_runner.h (queueing and batching: scheduler_test.cc).
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
using ::llama::testing::kVocab;
using ::llama::testing::Reference;
using ::llama::testing::SchedulerFakeTest;

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
