// Scheduler on the real stories260K fixtures, CPU backend: concurrent greedy streams
// must equal the references, also with half of them cancelled mid-stream.
#include <cctype>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "gtest/gtest.h"
#include "tests/engine/scheduler_test_util.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using ::llama::testing::Collect;
using ::llama::testing::Collected;
using ::llama::testing::Greedy;

class SchedulerCpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerCpuTest, EightConcurrentGreedyStreamsMatchReference) {
  auto w = LoadModelWeights(testing::ModelDir(GetParam()));
  ASSERT_TRUE(w.ok()) << w.status();
  RunnerOptions ro;
  ro.max_slots = 4;  // 8 streams on 4 slots: half of them queue, then reuse slots
  ro.threads = 2;
  auto runner = CreateCpuRunner(*w, ro);
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto tok = Tokenizer::Load(testing::ModelDir(GetParam()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  SchedulerOptions so;
  so.prefill_chunk = 2;
  Scheduler sched(std::move(*runner), std::shared_ptr<const Tokenizer>(std::move(*tok)), so);

  const auto& ref = testing::References()[GetParam()];
  const std::vector<int> full = ref["greedy_once_upon_a_time_32"].get<std::vector<int>>();
  const std::vector<int> prompt(full.begin(), full.begin() + 5);
  const std::vector<int> expected(full.begin() + 5, full.end());
  const std::string ref_text = ref["greedy_once_upon_a_time_32_text"].get<std::string>();

  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 8; ++i) {
    auto h = sched.Submit(Greedy(prompt, static_cast<int>(expected.size())));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  std::vector<Collected> results(8);
  std::vector<std::thread> readers;
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&, i] { results[i] = Collect(*handles[i]); });
  }
  for (auto& t : readers) t.join();
  const std::string prompt_text = sched.tokenizer().Decode(prompt);
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(results[i].status.ok()) << results[i].status;
    EXPECT_EQ(results[i].tokens, expected) << GetParam() << " stream " << i;
    EXPECT_EQ(results[i].finish, FinishReason::kLength);
    EXPECT_EQ(prompt_text + results[i].text, ref_text) << GetParam() << " stream " << i;
  }
  SchedulerStats s = sched.stats();
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.tokens_generated, 8 * static_cast<int64_t>(expected.size()));
}

TEST(SchedulerCpuStressTest, ThirtyTwoStreamsHalfCancelledMidStream) {
  auto w = LoadModelWeights(testing::ModelDir("main"));
  ASSERT_TRUE(w.ok()) << w.status();
  RunnerOptions ro;
  ro.max_slots = 8;
  ro.threads = 2;
  auto runner = CreateCpuRunner(*w, ro);
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto tok = Tokenizer::Load(testing::ModelDir("main"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  Scheduler sched(std::move(*runner), std::shared_ptr<const Tokenizer>(std::move(*tok)), {});
  const std::vector<int> full =
      testing::References()["main"]["greedy_once_upon_a_time_32"].get<std::vector<int>>();
  const std::vector<int> prompt(full.begin(), full.begin() + 5);
  const std::vector<int> expected(full.begin() + 5, full.end());

  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 32; ++i) {
    auto h = sched.Submit(Greedy(prompt, static_cast<int>(expected.size()), absl::StrCat(i)));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  std::vector<Collected> results(32);
  std::vector<std::thread> readers;
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&, i] {
      if (i % 2 == 1) {  // odd streams: read one chunk, then hang up
        StreamChunk first;
        if (handles[i]->Next(&first)) results[i].tokens = first.tokens;
        handles[i]->Cancel();
        Collected rest = Collect(*handles[i]);
        results[i].tokens.insert(results[i].tokens.end(), rest.tokens.begin(), rest.tokens.end());
        results[i].finish = rest.finish;
        results[i].status = rest.status;
      } else {
        results[i] = Collect(*handles[i]);
      }
    });
  }
  for (auto& t : readers) t.join();
  for (int i = 0; i < 32; ++i) {
    if (i % 2 == 0) {
      EXPECT_TRUE(results[i].status.ok()) << i << ": " << results[i].status;
      EXPECT_EQ(results[i].tokens, expected) << "stream " << i;
    } else {
      // Cancelled unless it had already finished; either way a prefix of the reference.
      EXPECT_TRUE(results[i].status.ok() || absl::IsCancelled(results[i].status))
          << results[i].status;
      ASSERT_LE(results[i].tokens.size(), expected.size());
      EXPECT_EQ(results[i].tokens,
                std::vector<int>(expected.begin(), expected.begin() + results[i].tokens.size()));
    }
  }
  SchedulerStats s = sched.stats();
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.requests_completed, 32);
}

INSTANTIATE_TEST_SUITE_P(AllModels, SchedulerCpuTest,
                         ::testing::ValuesIn(testing::AllModels()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace llama
