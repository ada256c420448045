// Sampler: greedy, seeded sampling, top-k/top-p, temperature-1 distribution, HF
// repetition penalty, logprobs, parameter validation; stop-string helpers.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace llama {
namespace {

// Deterministic pseudo-random logits (independent of the sampler's RNG).
std::vector<float> TestLogits(int n, uint64_t salt) {
  std::vector<float> v(n);
  uint64_t x = 0x9E3779B97F4A7C15ull ^ salt;
  for (int i = 0; i < n; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    v[i] = static_cast<float>((x >> 11) % 100000) / 10000.0f - 5.0f;  // [-5, 5)
  }
  return v;
}

int Argmax(const std::vector<float>& v) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(v.size()); ++i) if (v[i] > v[best]) best = i;
  return best;
}

std::vector<double> Softmax(const std::vector<float>& v, double temperature = 1.0) {
  double mx = -1e300;
  for (float x : v) mx = std::max<double>(mx, x);
  std::vector<double> p(v.size());
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += p[i] = std::exp((v[i] - mx) / temperature);
  for (double& x : p) x /= s;
  return p;
}

std::vector<int> Draw(const SamplingParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    out.push_back(s.Sample(absl::MakeSpan(l), {}));
  }
  return out;
}

TEST(SamplerTest, GreedyIsArgmax) {
  SamplingParams p;  // temperature 0
  Sampler s(p);
  for (uint64_t salt = 0; salt < 20; ++salt) {
    std::vector<float> l = TestLogits(32000, salt);
    const int want = Argmax(l);
    EXPECT_EQ(s.Sample(absl::MakeSpan(l), {}), want) << "salt " << salt;
  }
}

TEST(SamplerTest, GreedyTiesBreakToLowestId) {
  std::vector<float> l = {0.f, 3.f, 1.f, 3.f, 3.f};
  Sampler s(SamplingParams{});
  EXPECT_EQ(s.Sample(absl::MakeSpan(l), {}), 1);
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  const std::vector<float> logits = TestLogits(32000, 7);
  const std::vector<int> a = Draw(p, logits, 64);
  const std::vector<int> b = Draw(p, logits, 64);
  EXPECT_EQ(a, b);
  p.seed = 1235;
  const std::vector<int> c = Draw(p, logits, 64);
  EXPECT_NE(a, c);
  // Sampling at temperature 1 over 32000 near-uniform logits does not always pick argmax.
  EXPECT_NE(a, std::vector<int>(64, Argmax(logits)));
}

TEST(SamplerTest, TopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 1;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    p.seed = seed;
    const std::vector<float> logits = TestLogits(32000, seed + 100);
    for (int t : Draw(p, logits, 20)) EXPECT_EQ(t, Argmax(logits));
  }
}

TEST(SamplerTest, TinyTopPIsGreedy) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 1e-6f;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    p.seed = seed;
    const std::vector<float> logits = TestLogits(32000, seed + 200);
    for (int t : Draw(p, logits, 20)) EXPECT_EQ(t, Argmax(logits));
  }
}

// Chi-square-like check of empirical frequencies against probabilities.
void ExpectDistribution(const std::vector<int>& draws, const std::vector<double>& probs,
                        double abs_tol) {
  std::vector<double> freq(probs.size(), 0.0);
  for (int t : draws) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, static_cast<int>(probs.size()));
    freq[t] += 1.0 / draws.size();
  }
  for (size_t i = 0; i < probs.size(); ++i) {
    EXPECT_NEAR(freq[i], probs[i], abs_tol) << "token " << i;
  }
}

TEST(SamplerTest, TemperatureOneMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -3.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  const int n = 200000;
  // Standard error of a frequency <= 0.5/sqrt(n) ~ 0.0011: 0.006 is > 5 sigma.
  ExpectDistribution(Draw(p, logits, n), Softmax(logits), 0.006);
}

TEST(SamplerTest, TemperatureScalesDistribution) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f};
  SamplingParams p;
  p.temperature = 2.0f;
  p.seed = 7;
  ExpectDistribution(Draw(p, logits, 200000), Softmax(logits, 2.0), 0.006);
  p.temperature = 0.5f;
  ExpectDistribution(Draw(p, logits, 200000), Softmax(logits, 0.5), 0.006);
}

TEST(SamplerTest, TopKRenormalisesOverKLargest) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 3;
  p.seed = 9;
  // Kept: ids 4 (3.0), 5 (2.5), 1 (2.0).
  std::vector<float> kept = {-1e30f, 2.0f, -1e30f, -1e30f, 3.0f, 2.5f};
  ExpectDistribution(Draw(p, logits, 100000), Softmax(kept), 0.008);
}

TEST(SamplerTest, TopPKeepsSmallestNucleus) {
  // softmax of {ln .5, ln .3, ln .15, ln .05} = {.5, .3, .15, .05}; top_p = .7 keeps the
  // first two (cumulative .5 < .7, .8 >= .7), renormalised to {.625, .375}.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.7f;
  p.seed = 3;
  ExpectDistribution(Draw(p, logits, 100000), {0.625, 0.375, 0.0, 0.0}, 0.008);
}

TEST(SamplerTest, TopPOverLargeVocabStaysInNucleus) {
  const std::vector<float> logits = TestLogits(32000, 55);
  const std::vector<double> probs = Softmax(logits);
  // The nucleus computed independently by a full sort.
  std::vector<int> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<bool> in(logits.size(), false);
  double mass = 0;
  for (int id : order) {
    in[id] = true;
    mass += probs[id];
    if (mass >= 0.3) break;
  }
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.3f;
  p.seed = 11;
  for (int t : Draw(p, logits, 500)) EXPECT_TRUE(in[t]) << "token " << t << " outside the nucleus";
}

TEST(SamplerTest, RepetitionPenaltyMatchesHfFormula) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {4.0f, -1.0f, 3.0f, 0.5f, 1.0f};
  // History repeats 0 and 1: each distinct id is penalised once.
  const std::vector<int> history = {0, 1, 0, 3, 1, 0};
  const int t = s.Sample(absl::MakeSpan(l), history);
  EXPECT_FLOAT_EQ(l[0], 2.0f);   // 4 / 2
  EXPECT_FLOAT_EQ(l[1], -2.0f);  // -1 * 2
  EXPECT_FLOAT_EQ(l[2], 3.0f);   // untouched
  EXPECT_FLOAT_EQ(l[3], 0.25f);  // 0.5 / 2
  EXPECT_FLOAT_EQ(l[4], 1.0f);
  EXPECT_EQ(t, 2);  // greedy over the penalised logits
}

TEST(SamplerTest, LogprobIsLogSoftmaxOfPenalisedLogitsBeforeTemperature) {
  const std::vector<float> base = {1.0f, 2.0f, 0.5f, 3.0f};
  {
    SamplingParams p;  // greedy
    Sampler s(p);
    std::vector<float> l = base;
    float lp = 0;
    const int t = s.Sample(absl::MakeSpan(l), {}, &lp);
    ASSERT_EQ(t, 3);
    EXPECT_NEAR(lp, std::log(Softmax(base)[3]), 1e-5);
  }
  {
    SamplingParams p;
    p.temperature = 0.7f;
    p.repetition_penalty = 1.5f;
    p.seed = 5;
    Sampler s(p);
    const std::vector<float> penalised = {1.0f / 1.5f, 2.0f, 0.5f, 3.0f / 1.5f};
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = base;
      float lp = 0;
      const int t = s.Sample(absl::MakeSpan(l), std::vector<int>{0, 3}, &lp);
      EXPECT_NEAR(lp, std::log(Softmax(penalised)[t]), 1e-5) << "token " << t;
    }
  }
}

TEST(SamplerTest, ValidateRejectsOutOfRange) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
  auto bad = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    return ValidateSamplingParams(p);
  };
  EXPECT_EQ(bad([](SamplingParams& p) { p.temperature = -0.1f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(bad([](SamplingParams& p) { p.temperature = NAN; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.top_p = 0.0f; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.top_p = 1.01f; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.top_k = -1; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.max_new_tokens = 0; }).ok());
  EXPECT_FALSE(bad([](SamplingParams& p) { p.stop = {"ok", ""}; }).ok());
  const absl::Status st = bad([](SamplingParams& p) { p.top_p = 2.0f; });
  EXPECT_NE(st.message().find("top_p"), std::string::npos) << st;
  EXPECT_TRUE(bad([](SamplingParams& p) {
                p.temperature = 0.8f;
                p.top_p = 1.0f;
                p.top_k = 40;
                p.repetition_penalty = 1.1f;
                p.stop = {"\n\n"};
              }).ok());
}

TEST(StopTest, FindStopReturnsEarliest) {
  EXPECT_EQ(FindStop("hello world", {"world", "lo"}), 3u);
  EXPECT_EQ(FindStop("hello world", {"xyz"}), std::string::npos);
  EXPECT_EQ(FindStop("hello", {}), std::string::npos);
  EXPECT_EQ(FindStop("a</s>b", {"</s>"}), 1u);
}

TEST(StopTest, HoldBackForStopIsLongestProperPrefix) {
  EXPECT_EQ(HoldBackForStop("hello wor", {"world"}), 3u);
  EXPECT_EQ(HoldBackForStop("hello", {"world"}), 0u);
  EXPECT_EQ(HoldBackForStop("abc###", {"####"}), 3u);
  EXPECT_EQ(HoldBackForStop("ab", {"abc", "b!"}), 2u);
  EXPECT_EQ(HoldBackForStop("xyz", {"xyz"}), 0u);  // a whole match is FindStop's business
  EXPECT_EQ(HoldBackForStop("", {"a"}), 0u);
}

TEST(StopTest, StopSpanningPiecesIsFoundIncrementally) {
  // Feed pieces one at a time as Sequence does: emit all but the held-back tail, and
  // stop when FindStop matches.
  const std::vector<std::string> pieces = {"The answer", " is", " 4", "2.\n", "\nUser", ":"};
  const std::vector<std::string> stops = {"\n\nUser:"};
  std::string pending, emitted;
  bool stopped = false;
  for (const std::string& p : pieces) {
    pending += p;
    const size_t at = FindStop(pending, stops);
    if (at != std::string::npos) {
      emitted += pending.substr(0, at);
      stopped = true;
      break;
    }
    const size_t hold = HoldBackForStop(pending, stops);
    emitted += pending.substr(0, pending.size() - hold);
    pending.erase(0, pending.size() - hold);
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(emitted, "The answer is 42.");
}

}  // namespace
}  // namespace llama
