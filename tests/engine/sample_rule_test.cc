// The sampling rule shared by the host Sampler and the device kernel (engine/sampler.h):
// kernels::SampleUniform, KeepCandidates / DrawKept / SampleToken against a full-sort
// reference written here, the Sampler's draw counter, a chi-square check of the drawn
// distribution, and the CPU runner's default DecodeSampled on the stories260K fixture.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "engine/generate.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/weights.h"
#include "gtest/gtest.h"
#include "kernels/sample_uniform.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using kernels::SampleUniform;

// Deterministic logits: `levels` > 0 rounds them to that many distinct values (ties).
std::vector<float> Logits(int n, uint64_t salt, int levels = 0) {
  std::vector<float> v(n);
  uint64_t x = 0x2545F4914F6CDD1Dull ^ (salt * 0x9E3779B97F4A7C15ull);
  for (int i = 0; i < n; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    const double r = static_cast<double>(x >> 11) / 9007199254740992.0;  // [0, 1)
    v[i] = levels > 0 ? static_cast<float>(std::floor(r * levels)) * 0.5f - levels * 0.25f
                      : static_cast<float>(r * 16.0 - 8.0);
  }
  return v;
}

// The rule written out plainly: full sort (higher logit first, lower id first), top_k, the
// shortest prefix reaching top_p of the candidates' total, then the inverse CDF in id order.
struct Reference {
  std::vector<int> kept;  // ascending ids
  std::vector<double> w;  // their weights
  double total = 0;
  Reference(const std::vector<float>& l, const SampleRule& r) {
    const int n = static_cast<int>(l.size());
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    if (r.top_k > 0 && r.top_k < n) order.resize(r.top_k);
    const double mx = l[order[0]];
    auto weight = [&](int id) { return std::exp((static_cast<double>(l[id]) - mx) / r.temperature); };
    double cand_total = 0;
    for (int id : order) cand_total += weight(id);
    if (r.top_p < 1.0f) {
      double mass = 0;
      size_t cut = order.size();
      for (size_t i = 0; i < order.size(); ++i) {
        mass += weight(order[i]);
        if (mass >= r.top_p * cand_total) {
          cut = i + 1;
          break;
        }
      }
      order.resize(cut);
    }
    kept = order;
    std::sort(kept.begin(), kept.end());
    for (int id : kept) total += w.emplace_back(weight(id));
  }
  int Draw(double u) const {
    double acc = 0;
    for (size_t i = 0; i < kept.size(); ++i) {
      acc += w[i];
      if (u * total < acc) return kept[i];
    }
    return kept.back();
  }
};

TEST(SampleUniformTest, DeterministicInRangeAndSpread) {
  double sum = 0;
  std::set<double> seen;
  for (uint64_t t = 0; t < 100000; ++t) {
    const double u = SampleUniform(42, t);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, SampleUniform(42, t));
    sum += u;
    if (t < 1000) seen.insert(u);
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);  // sd of the mean ~0.0009
  EXPECT_EQ(seen.size(), 1000u);
  // Neighbouring seeds and steps give unrelated numbers (no shifted streams).
  int equal = 0;
  for (uint64_t t = 0; t < 1000; ++t) equal += SampleUniform(7, t + 1) == SampleUniform(8, t);
  EXPECT_EQ(equal, 0);
  EXPECT_NE(SampleUniform(0, 0), SampleUniform(1, 0));
  EXPECT_NE(SampleUniform(0, 0), SampleUniform(0, 1));
}

TEST(SampleRuleTest, MatchesFullSortReference) {
  const std::vector<SampleRule> rules = {
      {1.0f, 0, 1.0f},   {0.7f, 0, 0.9f},  {0.7f, 40, 1.0f}, {1.3f, 40, 0.8f}, {0.5f, 1, 1.0f},
      {2.0f, 5, 0.3f},   {1.0f, 0, 1e-6f}, {0.8f, 997, 0.95f}, {1.0f, 1000, 0.5f}, {1.0f, 1234, 1.0f},
      {0.3f, 64, 0.99f}, {4.0f, 0, 0.6f}};
  int draws = 0;
  for (uint64_t salt = 0; salt < 12; ++salt) {
    // Continuous logits, then few levels (many ties, cuts inside runs of equal logits).
    for (const int levels : {0, 7, 40}) {
      const std::vector<float> l = Logits(1000, salt, levels);
      for (const SampleRule& r : rules) {
        SCOPED_TRACE(::testing::Message() << "salt " << salt << " levels " << levels << " T " << r.temperature
                                          << " top_k " << r.top_k << " top_p " << r.top_p);
        const Reference ref(l, r);
        KeptCandidates kept;
        KeepCandidates(l, r, &kept);
        ASSERT_EQ(kept.ids, ref.kept);
        ASSERT_EQ(kept.weights.size(), kept.ids.size());
        EXPECT_NEAR(kept.total, ref.total, 1e-12 * ref.total);
        for (int i = 0; i < 50; ++i) {
          const double u = SampleUniform(salt, i);
          ASSERT_EQ(DrawKept(kept, u), ref.Draw(u)) << "u " << u;
          ASSERT_EQ(SampleToken(l, r, u), ref.Draw(u));
          ++draws;
        }
      }
    }
  }
  EXPECT_EQ(draws, 12 * 3 * 12 * 50);
}

TEST(SampleRuleTest, InverseCdfIsInIdOrderAndEdgesHold) {
  // Weights 1, 2, 1 (ids 0..2): u splits [0, 1) at 1/4 and 3/4 in id order.
  const std::vector<float> l = {0.0f, std::log(2.0f), 0.0f};
  const SampleRule r{1.0f, 0, 1.0f};
  EXPECT_EQ(SampleToken(l, r, 0.0), 0);
  EXPECT_EQ(SampleToken(l, r, 0.2499), 0);
  EXPECT_EQ(SampleToken(l, r, 0.2501), 1);
  EXPECT_EQ(SampleToken(l, r, 0.7499), 1);
  EXPECT_EQ(SampleToken(l, r, 0.7501), 2);
  EXPECT_EQ(SampleToken(l, r, std::nextafter(1.0, 0.0)), 2);
  // Rounding past the kept total gives the last kept id, not an id outside the set.
  KeptCandidates kept;
  KeepCandidates(l, SampleRule{1.0f, 2, 1.0f}, &kept);  // ids 0 and 1 (tie at 0: lower id)
  EXPECT_EQ(kept.ids, (std::vector<int>{0, 1}));
  EXPECT_EQ(DrawKept(kept, 1.0), 1);
  EXPECT_EQ(SampleToken(l, SampleRule{0.0f, 0, 1.0f}, 0.9), 1) << "temperature 0 is the argmax";
}

// The Sampler draws its t-th sampled token with SampleUniform(seed, t); tokens picked elsewhere
// (SkipDraw) move it on, so host and runner share one stream of draws.
TEST(SampleRuleTest, SamplerUsesCounterBasedDraws) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 50;
  p.top_p = 0.95f;
  p.seed = 2024;
  Sampler s(p);
  const SampleRule rule{p.temperature, p.top_k, p.top_p};
  for (uint64_t t = 0; t < 40; ++t) {
    std::vector<float> l = Logits(500, t, t % 2 ? 30 : 0);
    ASSERT_EQ(s.draws(), t + t / 4);
    const int want = SampleToken(l, rule, SampleUniform(p.seed, s.draws()));
    EXPECT_EQ(s.Sample(absl::MakeSpan(l), {}), want) << "t " << t;
    if (t % 4 == 3) s.SkipDraw();
  }
  SamplingParams g;  // greedy: no draws
  Sampler greedy(g);
  std::vector<float> l = Logits(100, 1);
  greedy.Sample(absl::MakeSpan(l), {});
  EXPECT_EQ(greedy.draws(), 0u);
}

// Chi-square of 60000 seeded draws (deterministic) against the kept set's renormalised
// probabilities, for several rules; 1% critical values of chi-square with df = bins - 1.
TEST(SampleRuleTest, DrawsFollowTheKeptDistribution) {
  const std::vector<float> l = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f, 2.5f, -0.5f};
  struct Case {
    SampleRule rule;
    int kept;
  };
  for (const Case& c : std::vector<Case>{{{1.0f, 0, 1.0f}, 10}, {{0.7f, 4, 1.0f}, 4}, {{1.5f, 0, 0.8f}, 0},
                                         {{1.0f, 6, 0.9f}, 0}}) {
    const Reference ref(l, c.rule);
    if (c.kept > 0) ASSERT_EQ(static_cast<int>(ref.kept.size()), c.kept);
    ASSERT_GE(ref.kept.size(), 2u);
    SamplingParams p;
    p.temperature = c.rule.temperature;
    p.top_k = c.rule.top_k;
    p.top_p = c.rule.top_p;
    p.seed = 99;
    Sampler s(p);
    const int n = 60000;
    std::vector<double> count(l.size(), 0);
    for (int i = 0; i < n; ++i) {
      std::vector<float> x = l;
      count[s.Sample(absl::MakeSpan(x), {})] += 1;
    }
    double chi2 = 0;
    for (size_t k = 0; k < ref.kept.size(); ++k) {
      const double expect = n * ref.w[k] / ref.total;
      chi2 += (count[ref.kept[k]] - expect) * (count[ref.kept[k]] - expect) / expect;
      count[ref.kept[k]] = 0;
    }
    for (double rest : count) EXPECT_EQ(rest, 0) << "a draw outside the kept set";
    // 99th percentiles of chi-square for df = 1..9.
    const double crit[] = {0, 6.63, 9.21, 11.34, 13.28, 15.09, 16.81, 18.48, 20.09, 21.67};
    EXPECT_LT(chi2, crit[ref.kept.size() - 1]) << "kept " << ref.kept.size() << " T " << c.rule.temperature;
  }
}

// The CPU runner's default DecodeSampled (Decode + the host rule) picks what the host Sequence
// path picks for the same seed, step after step, on the stories260K fixture (mixed batch:
// one sampled row, one greedy row).
TEST(SampleRuleTest, DefaultDecodeSampledMatchesSequenceStepOnFixture) {
  auto w = LoadModelWeights(testing::ModelDir("fp32"));
  ASSERT_TRUE(w.ok()) << w.status();
  RunnerOptions opt;
  opt.max_slots = 4;
  opt.threads = 2;
  auto made = CreateCpuRunner(*w, opt);
  ASSERT_TRUE(made.ok()) << made.status();
  ModelRunner& r = **made;
  const int vocab = r.config().vocab_size;
  SamplingParams p;
  p.temperature = 1.1f;
  p.top_k = 60;
  p.top_p = 0.95f;
  p.seed = 31337;
  p.max_new_tokens = 40;
  SamplingParams g = p;
  g.temperature = 0.0f;
  const std::vector<int> prompt = {1, 403, 407, 261, 378};
  const std::vector<int32_t> prompt32(prompt.begin(), prompt.end());
  // Host path on slots 0 (sampled) and 1 (greedy): Decode, then Sequence::Step on the logits.
  // Runner path on slots 2 and 3: DecodeSampled picks, Sequence::StepChosen follows.
  const Tokenizer* tok = testing::StoriesTokenizer().get();
  ASSERT_NE(tok, nullptr);
  Sequence host(tok, prompt, p, {-1}), host_g(tok, prompt, g, {-1});
  Sequence dev(tok, prompt, p, {-1}), dev_g(tok, prompt, g, {-1});
  std::vector<float> logits(2 * vocab);
  for (int slot = 0; slot < 4; ++slot) {
    ASSERT_TRUE(r.Prefill(slot, 0, prompt32, absl::MakeSpan(logits.data(), vocab)).ok());
    Sequence& s = slot == 0 ? host : slot == 1 ? host_g : slot == 2 ? dev : dev_g;
    ASSERT_TRUE(s.runner_can_choose());
    s.Step(absl::MakeSpan(logits.data(), vocab));
  }
  int differs_from_greedy = 0;
  for (int step = 0; step < 30; ++step) {
    const int pos = static_cast<int>(host.tokens().size()) - 1;
    const std::vector<int> hs = {0, 1}, ds = {2, 3}, ps = {pos, pos};
    std::vector<int32_t> ht = {host.tokens().back(), host_g.tokens().back()};
    ASSERT_TRUE(r.Decode(hs, ps, ht, absl::MakeSpan(logits)).ok());
    host.Step(absl::MakeSpan(logits.data(), vocab));
    host_g.Step(absl::MakeSpan(logits.data() + vocab, vocab));
    std::vector<int32_t> dt = {dev.tokens().back(), dev_g.tokens().back()}, ids(2);
    const std::vector<RowSampling> rows = {dev.sampling(), dev_g.sampling()};
    EXPECT_EQ(rows[0].draw, static_cast<uint64_t>(step + 1));
    ASSERT_TRUE(r.DecodeSampled(ds, ps, dt, rows, absl::MakeSpan(ids), /*run_ahead=*/true).ok());
    dev.StepChosen(ids[0]);
    dev_g.StepChosen(ids[1]);
    ASSERT_EQ(dev.tokens(), host.tokens()) << "step " << step;
    ASSERT_EQ(dev_g.tokens(), host_g.tokens()) << "step " << step;
    differs_from_greedy += host.tokens().back() != host_g.tokens().back();
  }
  EXPECT_GT(differs_from_greedy, 0) << "the sampled row should not be greedy";
}

}  // namespace
}  // namespace llama
