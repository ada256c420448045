// Must show 5: 32 concurrent streams on the CPU backend complete with no error (and with
// the reference tokens); cancelling half of them mid-stream frees their state — the
// queue, running-sequence and active-stream gauges return to zero.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

constexpr int kStreams = 32;

class ConcurrencyTest : public SharedServerTest<ConcurrencyTest> {
 protected:
  static void SetUpTestSuite() { StartServer({"main", "gptq-4bit-32g-actorder_True"}); }
};

TEST_F(ConcurrencyTest, ThirtyTwoConcurrentStreamsCompleteWithReferenceOutput) {
  std::vector<StreamResult> results(kStreams);
  std::vector<std::string> variants(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    variants[i] = i % 2 ? "main" : "gptq-4bit-32g-actorder_True";
    threads.emplace_back([&, i] { results[i] = Generate(*server_, GreedyRequest(variants[i])); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
    EXPECT_EQ(results[i].tokens, ReferenceContinuation(variants[i]));
    EXPECT_EQ(results[i].finish, v1::FINISH_REASON_LENGTH);
  }
  EXPECT_TRUE(server_->WaitIdle("main"));
  EXPECT_TRUE(server_->WaitIdle("gptq-4bit-32g-actorder_True"));
}

TEST_F(ConcurrencyTest, CancellingHalfMidStreamFreesTheirState) {
  // 8 slots for 32 streams: some run while others wait in the queue.
  ASSERT_TRUE(server_->LoadSlow("slow", absl::Milliseconds(5), 8, 64).ok());
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs(kStreams);
  std::vector<StreamResult> results(kStreams);
  std::atomic<int> first_chunks{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    ctxs[i] = server_->Ctx();
    threads.emplace_back([&, i] {
      // The half to be cancelled asks for far more tokens than it will get to see.
      const int max_new = i % 2 == 0 ? 480 : 64;
      auto reader = server_->inference().Generate(ctxs[i].get(), GreedyRequest("slow", max_new));
      v1::GenerateResponse chunk;
      StreamResult& r = results[i];
      if (reader->Read(&chunk)) {
        r.tokens.assign(chunk.token_ids().begin(), chunk.token_ids().end());
        ++first_chunks;
        if (i % 2 == 0) ctxs[i]->TryCancel();  // the even half leaves mid-stream
      }
      StreamResult rest = ReadAll(reader);
      r.status = rest.status;
      r.tokens.insert(r.tokens.end(), rest.tokens.begin(), rest.tokens.end());
      r.finish = rest.finish;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(first_chunks.load(), kStreams);
  std::vector<int> want(ReferenceContinuation("main"));
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    if (i % 2 == 0) {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::CANCELLED);
      EXPECT_LT(results[i].tokens.size(), 480u);
    } else {
      ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
      ASSERT_EQ(results[i].tokens.size(), 64u);
      EXPECT_TRUE(std::equal(want.begin(), want.end(), results[i].tokens.begin()));
    }
  }
  // Everything cancelled was released: gauges back to zero, and the scheduler agrees.
  ASSERT_TRUE(server_->WaitIdle("slow"));
  absl::StatusOr<std::shared_ptr<Scheduler>> sched = server_->manager().Acquire("slow");
  ASSERT_TRUE(sched.ok());
  EXPECT_EQ((*sched)->stats().queued, 0);
  EXPECT_EQ((*sched)->stats().active, 0);
  // All 32 requests were accounted for by the metrics.
  std::string text = server_->MetricsText();
  EXPECT_NE(text.find("llama_requests_total{variant=\"slow\",method=\"Generate\",code=\"OK\"} 16"),
            std::string::npos);
  EXPECT_NE(text.find(
                "llama_requests_total{variant=\"slow\",method=\"Generate\",code=\"CANCELLED\"} 16"),
            std::string::npos);
}

}  // namespace
}  // namespace llama::services::testing
