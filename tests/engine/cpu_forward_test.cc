// The CPU backend against the fixtures' independent references (HF fp32 forward):
// logits, greedy sequences and perplexity for fp32 and all four GPTQ branch layouts.
#include <cmath>
#include <string>
#include <vector>

#include "engine/runner.h"
#include "engine/weights.h"
#include "gtest/gtest.h"
#include "test_fixtures.h"

namespace llama {
namespace {

using testing::References;

class CpuForwardTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto w = LoadModelWeights(testing::ModelDir(GetParam()));
    ASSERT_TRUE(w.ok()) << w.status();
    weights_ = *w;
    RunnerOptions opt;
    opt.max_slots = 2;
    opt.threads = 2;
    auto r = CreateCpuRunner(weights_, opt);
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
    ref_ = References()[GetParam()];
  }

  static int Argmax(const std::vector<float>& v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
  }

  // Greedy continuation of `prompt` for `steps` tokens (no EOS stop: the references don't).
  std::vector<int> Greedy(const std::vector<int>& prompt, int steps) {
    const int vocab = weights_->config.vocab_size;
    std::vector<float> logits(vocab);
    std::vector<int32_t> p(prompt.begin(), prompt.end());
    EXPECT_TRUE(runner_->Prefill(0, 0, p, absl::MakeSpan(logits)).ok());
    std::vector<int> out = prompt;
    for (int i = 0; i < steps; ++i) {
      int next = Argmax(logits);
      out.push_back(next);
      if (i + 1 == steps) break;
      int slot = 0, pos = static_cast<int>(out.size()) - 1;
      int32_t tok = next;
      EXPECT_TRUE(runner_->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                  absl::MakeConstSpan(&tok, 1), absl::MakeSpan(logits))
                      .ok());
    }
    return out;
  }

  std::shared_ptr<const ModelWeights> weights_;
  std::unique_ptr<ModelRunner> runner_;
  nlohmann::json ref_;
};

TEST_P(CpuForwardTest, PromptLogitsMatchReferenceWithin1e3) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  const int vocab = weights_->config.vocab_size;
  std::vector<float> logits(prompt.size() * vocab);
  ASSERT_TRUE(runner_->Prefill(0, 0, prompt, absl::MakeSpan(logits), /*all_logits=*/true).ok());
  const auto& want = ref_["logits_prompt_1_403_407_261_378"];
  ASSERT_EQ(want.size(), prompt.size());
  double worst = 0;
  for (size_t t = 0; t < prompt.size(); ++t) {
    ASSERT_EQ(want[t].size(), static_cast<size_t>(vocab));
    for (int v = 0; v < vocab; ++v)
      worst = std::max(worst, std::abs(logits[t * vocab + v] - want[t][v].get<double>()));
  }
  EXPECT_LT(worst, 1e-3) << "max |logit - reference| over 5 x " << vocab;
}

TEST_P(CpuForwardTest, GreedyFromBosMatchesReference) {
  const std::vector<int> want = ref_["greedy_from_bos_64"];
  EXPECT_EQ(Greedy({1}, static_cast<int>(want.size()) - 1), want);
}

TEST_P(CpuForwardTest, GreedyOnceUponATimeMatchesReference) {
  const std::vector<int> want = ref_["greedy_once_upon_a_time_32"];
  EXPECT_EQ(Greedy({1, 403, 407, 261, 378}, static_cast<int>(want.size()) - 5), want);
}

TEST_P(CpuForwardTest, KvCacheDecodeEqualsFullPrefill) {
  // Logits of the last token via prefill of everything vs prefill + decode steps.
  const std::vector<int32_t> seq = {1, 403, 407, 261, 378, 432, 383};
  const int vocab = weights_->config.vocab_size;
  std::vector<float> full(vocab), stepped(vocab);
  ASSERT_TRUE(runner_->Prefill(1, 0, seq, absl::MakeSpan(full)).ok());
  ASSERT_TRUE(runner_->Prefill(0, 0, absl::MakeConstSpan(seq.data(), 3), absl::MakeSpan(stepped)).ok());
  for (int pos = 3; pos < static_cast<int>(seq.size()); ++pos) {
    int slot = 0;
    ASSERT_TRUE(runner_->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                absl::MakeConstSpan(&seq[pos], 1), absl::MakeSpan(stepped)).ok());
  }
  for (int v = 0; v < vocab; ++v) ASSERT_NEAR(full[v], stepped[v], 1e-4) << "vocab id " << v;
}

TEST_P(CpuForwardTest, PerplexityWithinHalfPercentOfReference) {
  const auto eval = testing::ReadJson(testing::FixturesDir() +
                                      "/stories260K-reference/eval_tokens.json")["sequences"];
  const int vocab = weights_->config.vocab_size;
  double nll = 0;
  long count = 0;
  for (const auto& s : eval) {
    std::vector<int32_t> ids = s.get<std::vector<int32_t>>();
    std::vector<float> logits(ids.size() * vocab);
    ASSERT_TRUE(runner_->Prefill(0, 0, ids, absl::MakeSpan(logits), true).ok());
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      const float* row = &logits[t * vocab];
      double mx = *std::max_element(row, row + vocab), sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
      nll += -(row[ids[t + 1]] - mx - std::log(sum));
      ++count;
    }
  }
  ASSERT_EQ(count, static_cast<long>(eval.size()) * (eval[0].size() - 1));
  const double ppl = std::exp(nll / count), want = ref_["eval_ppl"].get<double>();
  EXPECT_NEAR(ppl, want, want * 0.005) << "perplexity " << ppl << " vs reference " << want;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CpuForwardTest, ::testing::ValuesIn(testing::AllModels()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(CpuRunnerErrors, PositionBeyondContextIsInvalidArgument) {
  auto w = LoadModelWeights(testing::ModelDir("main"));
  ASSERT_TRUE(w.ok()) << w.status();
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.max_context = 8;
  auto r = CreateCpuRunner(*w, opt);
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> prompt(9, 5);
  std::vector<float> logits((*w)->config.vocab_size);
  absl::Status s = (*r)->Prefill(0, 0, prompt, absl::MakeSpan(logits));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("context"), std::string::npos) << s;
  std::vector<int32_t> bad_token = {100000};
  EXPECT_EQ((*r)->Prefill(0, 0, bad_token, absl::MakeSpan(logits)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace llama
