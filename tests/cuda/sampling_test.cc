// kernels::LaunchSampleAdvance against the host sampling rule (engine/sampler.h), and
// CudaRunner::DecodeSampled (with run-ahead) against Decode + the host rule on the stories260K
// fixtures. The device sums weights in another order than the host, so a chosen id is checked
// to lie in the host's kept set with u inside its CDF interval (up to 1e-9), not for equality.
// The device's weights are integers, round(w * 2^E) with E = 63 - ceil(log2(vocab)) (48 at vocab
// 32000, 47 at 60000): each within 2^-(E+1) of the host's double weight (the largest weight is 1),
// a row's running sums within vocab * 2^-(E+1) <= 2^(62-2E) (2.3e-10 at E = 47) of the host's
// relative to a total >= 1, so 1e-9 still bounds the difference.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "engine/cuda/cuda_runner.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/weights.h"
#include "kernels/sample_uniform.h"
#include "kernels/sampling.h"
#include "nlohmann/json.hpp"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/fixture_refs.h"

namespace llama::testing {
namespace {

using kernels::SampleRow;
using kernels::SampleUniform;

// Whether `id` is what the host rule may pick from `logits` under `rule` with u: in the kept set,
// u within [cdf before id, cdf after id] of the kept set in id order, widened by 1e-9.
::testing::AssertionResult ConsistentWithHostRule(absl::Span<const float> logits, const SampleRule& rule, double u,
                                                  int id) {
  if (rule.temperature == 0.0f) {
    const int want = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (id == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "temperature 0: got " << id << ", argmax " << want;
  }
  KeptCandidates kept;
  KeepCandidates(logits, rule, &kept);
  const auto it = std::lower_bound(kept.ids.begin(), kept.ids.end(), id);
  if (it == kept.ids.end() || *it != id)
    return ::testing::AssertionFailure() << "id " << id << " is outside the host's kept set of " << kept.ids.size()
                                         << " (host picks " << DrawKept(kept, u) << ")";
  double before = 0;
  for (auto j = kept.ids.begin(); j != it; ++j) before += kept.weights[j - kept.ids.begin()];
  const double lo = before / kept.total, hi = (before + kept.weights[it - kept.ids.begin()]) / kept.total;
  if (u >= lo - 1e-9 && u <= hi + 1e-9) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "u " << u << " outside id " << id << "'s interval [" << lo << ", " << hi
                                       << "] (host picks " << DrawKept(kept, u) << ")";
}

// Logits of a language model's shape (a few large, most small); `levels` > 0 rounds them to
// that many values (ties, cuts inside runs of equal logits).
std::vector<float> ModelLikeLogits(int vocab, int levels) {
  std::vector<float> l = RandomFloats(vocab, -4.f, 4.f);
  for (int i = 0; i < 40; ++i) l[Rng()() % vocab] += 6.f + static_cast<float>(Rng()() % 100) * 0.1f;
  if (levels > 0)
    for (float& x : l) x = std::round(x * levels / 10.f);
  return l;
}

// The first draw t >= from whose u is below `below` (or above 1 - below with high): edge draws.
uint64_t EdgeDraw(uint64_t seed, bool high, double below) {
  for (uint64_t t = 0;; ++t) {
    const double u = SampleUniform(seed, t);
    if (high ? u > 1.0 - below : u < below) return t;
  }
}

// Launches one row per rule (row r = logits[r * vocab, (r + 1) * vocab)) with draws picked by
// trial (0: u near 0, 1: u near 1, the first and the last kept id; else any) and checks each row
// against the host rule, its position and its draw.
void CheckRows(const std::vector<float>& logits, int vocab, const std::vector<SampleRule>& rules, int trial) {
  const int n = static_cast<int>(rules.size());
  ASSERT_EQ(logits.size(), static_cast<size_t>(n) * vocab);
  DeviceBuffer<float> d_logits(logits);
  std::vector<SampleRow> rows(n);
  for (int r = 0; r < n; ++r) {
    const uint64_t seed = 1000 * trial + r;
    const uint64_t draw = trial == 0 ? EdgeDraw(seed, false, 1e-4) : trial == 1 ? EdgeDraw(seed, true, 1e-4)
                                                                                 : static_cast<uint64_t>(trial * 7 + r);
    rows[r] = SampleRow{rules[r].temperature, rules[r].top_k, rules[r].top_p, 0, seed, draw};
  }
  std::vector<int32_t> pos(n);
  for (int r = 0; r < n; ++r) pos[r] = 10 * r;
  DeviceBuffer<SampleRow> d_rows(rows);
  DeviceBuffer<int32_t> d_tok(n), d_pos(pos);
  // The ids also into pinned host memory (the runner's CudaOptions::ids_by_kernel).
  int32_t* ids = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&ids), n * sizeof(int32_t)), cudaSuccess);
  std::unique_ptr<int32_t, cudaError_t (*)(void*)> free_ids(ids, cudaFreeHost);
  std::fill(ids, ids + n, -1);
  ASSERT_EQ(kernels::LaunchSampleAdvance(d_logits.get(), vocab, vocab, d_rows.get(), d_tok.get(), d_pos.get(), n,
                                         nullptr, ids),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto tok = d_tok.Download();
  EXPECT_EQ(std::vector<int32_t>(ids, ids + n), tok);
  const auto pos_after = d_pos.Download();
  const auto rows_after = d_rows.Download();
  for (int r = 0; r < n; ++r) {
    SCOPED_TRACE(::testing::Message() << "trial " << trial << ", row " << r << ": T " << rules[r].temperature
                                      << " top_k " << rules[r].top_k << " top_p " << rules[r].top_p);
    const auto row = absl::MakeConstSpan(logits.data() + static_cast<size_t>(r) * vocab, vocab);
    EXPECT_TRUE(ConsistentWithHostRule(row, rules[r], SampleUniform(rows[r].seed, rows[r].draw), tok[r]));
    EXPECT_EQ(pos_after[r], pos[r] + 1);
    EXPECT_EQ(rows_after[r].draw, rows[r].draw + (rules[r].temperature != 0.0f ? 1 : 0));
    EXPECT_EQ(rows_after[r].seed, rows[r].seed);
  }
}

void RunKernelCase(int vocab) {
  const std::vector<SampleRule> rules = {{1.0f, 0, 1.0f},   {0.7f, 0, 0.9f},  {0.6f, 40, 1.0f}, {1.2f, 50, 0.95f},
                                         {0.0f, 0, 1.0f},   {2.0f, 1, 1.0f},  {1.0f, 0, 1e-6f}, {0.8f, 7, 0.5f},
                                         {1.0f, 3000, 0.99f}, {5.0f, 0, 0.3f}, {1.0f, vocab - 1, 1.0f},
                                         {0.9f, vocab - 1, 0.9f}};
  const int n = static_cast<int>(rules.size());
  for (const int levels : {0, 3, 20}) {
    SCOPED_TRACE(::testing::Message() << "vocab " << vocab << ", levels " << levels);
    std::vector<float> logits(static_cast<size_t>(n) * vocab);
    for (int r = 0; r < n; ++r) {
      const auto row = ModelLikeLogits(vocab, levels);
      std::copy(row.begin(), row.end(), logits.begin() + static_cast<size_t>(r) * vocab);
    }
    for (int trial = 0; trial < 6; ++trial) CheckRows(logits, vocab, rules, trial);
  }
}

TEST(SampleAdvanceTest, StagedRowsMatchHostRule) {
  SKIP_WITHOUT_CUDA();
  RunKernelCase(32000);
}

TEST(SampleAdvanceTest, UnstagedRowsMatchHostRule) {  // past the shared-memory row (51200 floats)
  SKIP_WITHOUT_CUDA();
  RunKernelCase(60000);
}

// Rows of other shapes: flat (all logits within 1e-3 of each other, above zero and around it:
// top-p 0.5 keeps thousands), peaked (one logit 30 above the rest), masked (90% -inf, as a
// grammar would leave them) and all equal (every cut inside one run of ties), under top-k 1 and
// vocab - 1 among others.
TEST(SampleAdvanceTest, FlatPeakedMaskedAndEqualRowsMatchHostRule) {
  SKIP_WITHOUT_CUDA();
  for (const int vocab : {32000, 60000}) {
    SCOPED_TRACE(::testing::Message() << "vocab " << vocab);
    const auto flat = RandomFloats(vocab, 2.0f, 2.001f);
    const auto flat_zero = RandomFloats(vocab, -5e-4f, 5e-4f);
    auto peaked = ModelLikeLogits(vocab, 0);
    peaked[Rng()() % vocab] = *std::max_element(peaked.begin(), peaked.end()) + 30.0f;
    auto masked = ModelLikeLogits(vocab, 0);
    for (float& x : masked)
      if (Rng()() % 10 != 0) x = -INFINITY;
    const std::vector<float> equal(vocab, 1.5f);
    std::vector<float> logits;
    std::vector<SampleRule> rules;
    auto add = [&](const std::vector<float>& row, const SampleRule& rule) {
      logits.insert(logits.end(), row.begin(), row.end());
      rules.push_back(rule);
    };
    for (const auto* row : {&flat, &flat_zero}) {
      add(*row, {1.0f, 0, 0.5f});
      add(*row, {0.6f, 0, 0.9f});
      add(*row, {1.0f, 1, 1.0f});
      add(*row, {1.0f, vocab - 1, 0.5f});
      add(*row, {1.0f, 40, 0.5f});
    }
    add(peaked, {0.6f, 0, 0.9f});
    add(peaked, {1.0f, 0, 1.0f});
    add(peaked, {0.8f, 40, 0.95f});
    add(peaked, {2.0f, vocab - 1, 0.999f});
    add(masked, {1.0f, 0, 1.0f});
    add(masked, {0.7f, 50, 0.9f});
    add(masked, {1.0f, 0, 0.95f});
    add(equal, {1.0f, 10, 1.0f});
    add(equal, {1.0f, 0, 0.5f});
    add(equal, {1.0f, 100, 0.3f});
    // The flat rows' nucleus at top-p 0.5 is thousands of ids.
    KeptCandidates kept;
    KeepCandidates(flat, SampleRule{1.0f, 0, 0.5f}, &kept);
    EXPECT_GT(kept.ids.size(), static_cast<size_t>(vocab / 4));
    KeepCandidates(flat_zero, SampleRule{1.0f, 0, 0.5f}, &kept);
    EXPECT_GT(kept.ids.size(), static_cast<size_t>(vocab / 4));
    for (int trial = 0; trial < 6; ++trial) CheckRows(logits, vocab, rules, trial);
  }
}

// A row's advanced draw samples the next uniform number: ten launches on the same row follow
// the host rule with draws t .. t + 9, and a padded row (ld > vocab) reads only its vocab.
TEST(SampleAdvanceTest, ReplaysAdvanceTheDraw) {
  SKIP_WITHOUT_CUDA();
  const int vocab = 5000, ld = 5120;
  const auto row = ModelLikeLogits(vocab, 0);
  std::vector<float> padded(2 * ld, 1e9f);  // the padding would win every draw
  std::copy(row.begin(), row.end(), padded.begin() + ld);
  DeviceBuffer<float> d_logits(padded);
  const SampleRule rule{1.5f, 0, 0.97f};
  std::vector<SampleRow> rows = {SampleRow{0.0f, 0, 1.0f, 0, 1, 0}, SampleRow{rule.temperature, 0, rule.top_p, 0, 77, 5}};
  DeviceBuffer<SampleRow> d_rows(rows);
  DeviceBuffer<int32_t> d_tok(2), d_pos(std::vector<int32_t>{0, 0});
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(kernels::LaunchSampleAdvance(d_logits.get(), vocab, ld, d_rows.get(), d_tok.get(), d_pos.get(), 2,
                                           nullptr),
              cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(d_rows.Download()[1].draw, 15u);
  EXPECT_EQ(d_pos.Download(), (std::vector<int32_t>{10, 10}));
  // The last launch drew with draw 14.
  EXPECT_TRUE(ConsistentWithHostRule(row, rule, SampleUniform(77, 14), d_tok.Download()[1]));
  EXPECT_LT(d_tok.Download()[0], vocab);
  EXPECT_EQ(kernels::LaunchSampleAdvance(d_logits.get(), vocab, vocab - 1, d_rows.get(), d_tok.get(), d_pos.get(), 2,
                                         nullptr),
            cudaErrorInvalidValue);
}

class SampledDecodeTest : public ::testing::TestWithParam<std::string> {};

// DecodeSampled (run-ahead collected while the batch continues; a dropped row, a changed seed
// and a Decode in between start afresh) picks what the host rule picks from a second runner's
// Decode logits for the same (seed, draw); a greedy row rides along at temperature 0.
TEST_P(SampledDecodeTest, RunAheadMatchesHostRuleOnDecodeLogits) {
  SKIP_WITHOUT_CUDA();
  auto w = LoadModelWeights(CudaFixtureModelDir(GetParam()));
  ASSERT_TRUE(w.ok()) << w.status();
  const int vocab = (*w)->config.vocab_size;
  RunnerOptions opt;
  opt.max_slots = 3;
  opt.max_context = 512;
  auto dev = CreateCudaRunner(*w, opt);
  auto ref = CreateCudaRunner(*w, opt);
  ASSERT_TRUE(dev.ok() && ref.ok());
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  std::vector<int> slots = {0, 1, 2}, pos = {3, 17, 40};
  std::vector<int32_t> toks;
  std::vector<RowSampling> rows = {{0.9f, 40, 0.9f, 11, 0}, {0.0f, 0, 1.0f, 0, 0}, {1.4f, 0, 1.0f, 12, 3}};
  std::vector<float> l(vocab);
  for (int s = 0; s < 3; ++s) {
    const std::vector<int32_t> p(seq.begin(), seq.begin() + pos[s]);
    ASSERT_TRUE((*dev)->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
    ASSERT_TRUE((*ref)->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
    toks.push_back(seq[pos[s]]);
  }
  int differs_from_argmax = 0;
  for (int step = 0; step < 16; ++step) {
    if (step == 6) {  // the batch changes: the step run ahead for three rows is not used
      slots.erase(slots.begin() + 1);
      pos.erase(pos.begin() + 1);
      toks.erase(toks.begin() + 1);
      rows.erase(rows.begin() + 1);
    }
    if (step == 10) rows[0].seed = 99;  // new parameters: not collected either
    const size_t n = slots.size();
    std::vector<float> logits(n * vocab);
    ASSERT_TRUE((*ref)->Decode(slots, pos, toks, absl::MakeSpan(logits)).ok());
    std::vector<int32_t> got(n, -1);
    if (step == 13) {  // another call between two run-ahead calls
      std::vector<float> scratch(n * vocab);
      ASSERT_TRUE((*dev)->Decode(slots, pos, toks, absl::MakeSpan(scratch)).ok());
    }
    ASSERT_TRUE((*dev)->DecodeSampled(slots, pos, toks, rows, absl::MakeSpan(got), /*run_ahead=*/step < 15).ok());
    for (size_t i = 0; i < n; ++i) {
      const auto row = absl::MakeConstSpan(logits.data() + i * vocab, vocab);
      const RowSampling& r = rows[i];
      EXPECT_TRUE(ConsistentWithHostRule(row, SampleRule{r.temperature, r.top_k, r.top_p},
                                         SampleUniform(r.seed, r.draw), got[i]))
          << "step " << step << ", row " << i;
      differs_from_argmax += r.temperature > 0 && got[i] != std::max_element(row.begin(), row.end()) - row.begin();
    }
    toks = got;
    for (int& p : pos) ++p;
    for (RowSampling& r : rows) r.draw += r.temperature > 0;
  }
  EXPECT_GT(differs_from_argmax, 0);
  const std::vector<RowSampling> bad = {{-1.0f, 0, 1.0f, 0, 0}};
  std::vector<int32_t> one(1);
  EXPECT_EQ((*dev)->DecodeSampled(std::vector<int>{0}, std::vector<int>{50}, std::vector<int32_t>{1}, bad,
                                  absl::MakeSpan(one), false).code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Branches, SampledDecodeTest, ::testing::Values("fp32", "main", "gptq-4bit-32g-actorder_True"),
                         BranchTestName);

}  // namespace
}  // namespace llama::testing
