// The CUDA backend on the stories260K fixtures (fp32 and the four GPTQ branch layouts)
// against references.json, the CPU backend, and its own decode paths. Load-time errors:
// cuda_errors_test.cc.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/cuda/cuda_runner.h"
#include "engine/runner.h"
#include "engine/weights.h"
#include "kernels/launch.h"
#include "nlohmann/json.hpp"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/fixture_refs.h"

namespace llama::testing {
namespace {

std::string ModelDir(const std::string& name) { return CudaFixtureModelDir(name); }

int Argmax(absl::Span<const float> v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}
// (max |a - b|, ||a - b|| / ||b||)
std::pair<double, double> Compare(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double d = std::isfinite(a[i]) ? static_cast<double>(a[i]) - b[i] : INFINITY;
    worst = std::max(worst, std::abs(d));
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return {worst, std::sqrt(num / std::max(den, 1e-30))};
}
float Top2Margin(std::vector<float> v) {
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  return v[0] - v[1];
}

class CudaFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_CUDA();
    auto w = LoadModelWeights(ModelDir(GetParam()));
    ASSERT_TRUE(w.ok()) << w.status();
    weights_ = *w;
    vocab_ = weights_->config.vocab_size;
    RunnerOptions opt;
    opt.max_slots = 3;
    opt.max_context = 512;
    auto r = CreateCudaRunner(weights_, opt);
    ASSERT_TRUE(r.ok()) << r.status();
    cuda_ = std::move(*r);
    opt.threads = 2;
    auto c = CreateCpuRunner(weights_, opt);
    ASSERT_TRUE(c.ok()) << c.status();
    cpu_ = std::move(*c);
  }

  // Another CUDA runner over this fixture's weights, with `co` (3 slots x 512 positions, as cuda_).
  absl::StatusOr<std::unique_ptr<ModelRunner>> CudaWith(const CudaOptions& co) {
    RunnerOptions opt;
    opt.max_slots = 3;
    opt.max_context = 512;
    return CreateCudaRunnerWithOptions(weights_, opt, co);
  }

  std::vector<float> DecodeOne(ModelRunner& r, int slot, int pos, int32_t tok) {
    std::vector<float> logits(vocab_);
    EXPECT_TRUE(r.Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1), absl::MakeConstSpan(&tok, 1),
                         absl::MakeSpan(logits)).ok());
    return logits;
  }

  // After `from` tokens of seq prefilled into slot 0 of a, b and the CPU runner: 8 decode
  // steps of seq on each; the largest max-abs logit difference of a vs b and of a vs the CPU.
  std::pair<double, double> DecodeDiffs(ModelRunner& a, ModelRunner& b, const std::vector<int>& seq, int from) {
    double ab = 0, cpu = 0;
    for (int pos = from; pos < from + 8; ++pos) {
      const std::vector<float> x = DecodeOne(a, 0, pos, seq[pos]);
      ab = std::max<double>(ab, Compare(x, DecodeOne(b, 0, pos, seq[pos])).first);
      cpu = std::max<double>(cpu, Compare(x, DecodeOne(*cpu_, 0, pos, seq[pos])).first);
    }
    return {ab, cpu};
  }

  // Two CUDA runners that differ in options decode the greedy reference (8 steps after a
  // 40-token prefill) within the bound between GEMV paths, of each other and of the CPU.
  void ExpectDecodeMatches(const CudaOptions& on, const CudaOptions& off, const char* what) {
    const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
    const std::vector<int32_t> toks(seq.begin(), seq.begin() + 40);
    auto a = CudaWith(on);
    auto b = CudaWith(off);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    std::vector<float> scratch(toks.size() * vocab_);
    ASSERT_TRUE((*a)->Prefill(0, 0, toks, absl::MakeSpan(scratch), true).ok());
    ASSERT_TRUE((*b)->Prefill(0, 0, toks, absl::MakeSpan(scratch), true).ok());
    ASSERT_TRUE(cpu_->Prefill(0, 0, toks, absl::MakeSpan(scratch), true).ok());
    const auto [paths, vs_cpu] = DecodeDiffs(**a, **b, seq, 40);
    std::printf("[ %s ] %s decode: max abs %.3g; vs CPU %.3g\n", GetParam().c_str(), what, paths, vs_cpu);
    EXPECT_LT(paths, 5e-2);
    EXPECT_LT(vs_cpu, 5e-2);
  }

  // Reference's top-2 margin after `prefix` (the reference model is the CPU backend,
  // which matches references.json within 1e-3).
  float ReferenceMargin(const std::vector<int>& prefix) {
    std::vector<int32_t> p(prefix.begin(), prefix.end());
    std::vector<float> logits(vocab_);
    EXPECT_TRUE(cpu_->Prefill(2, 0, p, absl::MakeSpan(logits)).ok());
    return Top2Margin(logits);
  }

  // Compares a generated sequence with the reference; a divergence is accepted only where
  // the reference's top-2 margin is < 0.05 (printed), and ends the comparison.
  void ExpectSameGreedy(const std::vector<int>& got, const std::vector<int>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] == want[i]) continue;
      const float margin = ReferenceMargin(std::vector<int>(want.begin(), want.begin() + i));
      std::printf("[ %s ] %s diverges at %zu (cuda %d, reference %d): reference top-2 margin %.4f\n",
                  GetParam().c_str(), what, i, got[i], want[i], margin);
      EXPECT_LT(margin, 0.05f) << what << " diverges at " << i << " where the reference is not a near-tie";
      return;
    }
  }

  std::vector<int> GreedyViaDecode(const std::vector<int>& prompt, int steps) {
    std::vector<int32_t> p(prompt.begin(), prompt.end());
    std::vector<float> logits(vocab_);
    EXPECT_TRUE(cuda_->Prefill(0, 0, p, absl::MakeSpan(logits)).ok());
    std::vector<int> out = prompt;
    for (int i = 0; i < steps; ++i) {
      out.push_back(Argmax(logits));
      if (i + 1 < steps) logits = DecodeOne(*cuda_, 0, static_cast<int>(out.size()) - 1, out.back());
    }
    return out;
  }

  std::vector<int> GreedyOnDevice(const std::vector<int>& prompt, int steps, ModelRunner* runner = nullptr) {
    ModelRunner& r = runner ? *runner : *cuda_;
    std::vector<int32_t> p(prompt.begin(), prompt.end());
    std::vector<float> logits(vocab_);
    EXPECT_TRUE(r.Prefill(1, 0, p, absl::MakeSpan(logits)).ok());
    std::vector<int> out = prompt;
    out.push_back(Argmax(logits));
    std::vector<int32_t> rest(steps - 1);
    const absl::Status st = r.DecodeGreedy(1, static_cast<int>(prompt.size()), out.back(), absl::MakeSpan(rest));
    EXPECT_TRUE(st.ok()) << st;
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
  }

  std::shared_ptr<const ModelWeights> weights_;
  std::unique_ptr<ModelRunner> cuda_, cpu_;
  int vocab_ = 0;
};

TEST_P(CudaFixtureTest, PromptLogitsWithin2e2OfReference) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  const auto& want = Refs()[GetParam()]["logits_prompt_1_403_407_261_378"];
  // Prefill (all rows) and the decode path (one token at a time) must both match.
  std::vector<float> all(prompt.size() * vocab_);
  ASSERT_TRUE(cuda_->Prefill(0, 0, prompt, absl::MakeSpan(all), /*all_logits=*/true).ok());
  std::vector<float> stepwise;
  for (size_t t = 0; t < prompt.size(); ++t) {
    const auto l = DecodeOne(*cuda_, 1, static_cast<int>(t), prompt[t]);
    stepwise.insert(stepwise.end(), l.begin(), l.end());
  }
  double worst_prefill = 0, worst_decode = 0;
  for (size_t t = 0; t < prompt.size(); ++t)
    for (int v = 0; v < vocab_; ++v) {
      const double ref = want[t][v].get<double>();
      worst_prefill = std::max(worst_prefill, std::abs(all[t * vocab_ + v] - ref));
      worst_decode = std::max(worst_decode, std::abs(stepwise[t * vocab_ + v] - ref));
    }
  std::printf("[ %s ] max |logit - reference|: prefill %.5f, decode %.5f\n", GetParam().c_str(), worst_prefill,
              worst_decode);
  EXPECT_LT(worst_prefill, 2e-2);
  EXPECT_LT(worst_decode, 2e-2);
}

TEST_P(CudaFixtureTest, GreedySequencesMatchReference) {
  for (const char* key : {"greedy_from_bos_64", "greedy_once_upon_a_time_32"}) {
    const std::vector<int> want = Refs()[GetParam()][key];
    const std::vector<int> prompt = std::string(key) == "greedy_from_bos_64" ? std::vector<int>{1}
                                                                             : std::vector<int>{1, 403, 407, 261, 378};
    const int steps = static_cast<int>(want.size() - prompt.size());
    ExpectSameGreedy(GreedyViaDecode(prompt, steps), want, (std::string(key) + " via Decode").c_str());
    ExpectSameGreedy(GreedyOnDevice(prompt, steps), want, (std::string(key) + " via DecodeGreedy").c_str());
  }
}

// Long prompts take the prefill path (dequantize + cuBLAS; attention by cuBLAS + softmax at
// the fixture's head_dim 8, flash-attention needs 128), in two
// chunks at different start positions; compared with the CPU backend row by row. Also with
// the q|k|v and gate|up GEMMs writing fp16 (CudaOptions::prefill_half_outputs).
TEST_P(CudaFixtureTest, ChunkedPrefillMatchesCpu) {
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  const std::vector<int32_t> toks(seq.begin(), seq.end());
  const int T = static_cast<int>(toks.size()), split = 40;
  std::vector<float> want(static_cast<size_t>(T) * vocab_), got(want.size());
  ASSERT_TRUE(cpu_->Prefill(0, 0, toks, absl::MakeSpan(want), true).ok());
  CudaOptions half_outputs;
  half_outputs.prefill_half_outputs = !CudaOptions{}.prefill_half_outputs;
  auto other = CudaWith(half_outputs);
  ASSERT_TRUE(other.ok()) << other.status();
  for (ModelRunner* r : {cuda_.get(), other->get()}) {
    ASSERT_TRUE(r->Prefill(2, 0, absl::MakeConstSpan(toks).subspan(0, split), absl::MakeSpan(got), true).ok());
    ASSERT_TRUE(r->Prefill(2, split, absl::MakeConstSpan(toks).subspan(split),
                           absl::MakeSpan(got).subspan(static_cast<size_t>(split) * vocab_), true).ok());
    const auto [worst, rel] = Compare(got, want);
    std::printf("[ %s ] chunked prefill (%s), %d x %d logits vs CPU: max abs %.5f, rel %.5f\n", GetParam().c_str(),
                r == cuda_.get() ? "default" : "prefill_half_outputs flipped", T, vocab_, worst, rel);
    EXPECT_LT(rel, 2e-2);
    EXPECT_LT(worst, 5e-2);
  }
}

// Prefill GEMMs over fp16 weights kept from load (CudaOptions::prefill_weights kResident)
// compute what dequantizing per prefill (kPerCall) does: the same dequantized bits, the same
// GEMMs. kAuto keeps them for a model this small (the device has room).
TEST_P(CudaFixtureTest, ResidentPrefillWeightsMatchPerCallDequant) {
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  const std::vector<int32_t> toks(seq.begin(), seq.end());
  CudaOptions resident, per_call;
  resident.prefill_weights = PrefillWeights::kResident;
  per_call.prefill_weights = PrefillWeights::kPerCall;
  auto r = CudaWith(resident);
  auto p = CudaWith(per_call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(p.ok()) << p.status();
  const bool quantized = GetParam() != "fp32";
  EXPECT_EQ(CudaPrefillWeightsResident(**r), quantized);
  EXPECT_FALSE(CudaPrefillWeightsResident(**p));
  EXPECT_EQ(CudaPrefillWeightsResident(*cuda_), quantized) << "kAuto with a device this empty";
  if (quantized) EXPECT_GT((*r)->memory_bytes(), (*p)->memory_bytes());
  std::vector<float> want(toks.size() * vocab_), got(want.size());
  ASSERT_TRUE((*p)->Prefill(0, 0, toks, absl::MakeSpan(want), true).ok());
  ASSERT_TRUE((*r)->Prefill(0, 0, toks, absl::MakeSpan(got), true).ok());
  const auto [worst, rel] = Compare(got, want);
  std::printf("[ %s ] resident fp16 prefill weights vs per-call dequant: max abs %.2g\n", GetParam().c_str(), worst);
  EXPECT_LT(worst, 1e-4);
}

// Down's act-order permutation folded into gate|up's columns (engine/act_order_fold.h; the
// default): prefill logits as without the fold (the same GEMMs on permuted columns), decode
// logits within the bound between any two GEMV paths (atomics and fp16 roundings of the
// inputs: 1.3e-3 relative, 0.034 max abs measured on an H200 for 128g), both within the usual
// bound of the CPU backend. tests/engine/act_order_fold_test.cc checks the fold itself.
TEST_P(CudaFixtureTest, FoldedDownPermutationMatchesUnfolded) {
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  const std::vector<int32_t> toks(seq.begin(), seq.begin() + 40);
  CudaOptions fold, plain;
  fold.fold_down_permutation = true;
  plain.fold_down_permutation = false;
  auto f = CudaWith(fold);
  auto u = CudaWith(plain);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(u.ok()) << u.status();
  std::vector<float> want(toks.size() * vocab_), got(want.size()), ref(want.size());
  ASSERT_TRUE((*u)->Prefill(0, 0, toks, absl::MakeSpan(want), true).ok());
  ASSERT_TRUE((*f)->Prefill(0, 0, toks, absl::MakeSpan(got), true).ok());
  ASSERT_TRUE(cpu_->Prefill(0, 0, toks, absl::MakeSpan(ref), true).ok());
  auto [worst, rel] = Compare(got, want);
  std::printf("[ %s ] folded vs unfolded prefill: max abs %.2g\n", GetParam().c_str(), worst);
  EXPECT_LT(rel, 1e-4);
  EXPECT_LT(Compare(got, ref).first, 5e-2);
  const auto [worst_decode, worst_cpu] = DecodeDiffs(**f, **u, seq, 40);
  std::printf("[ %s ] folded vs unfolded decode: max abs %.3g; folded vs CPU %.3g\n", GetParam().c_str(),
              worst_decode, worst_cpu);
  EXPECT_LT(worst_decode, 5e-2);
  EXPECT_LT(worst_cpu, 5e-2);
}

// Act-order RMSNorm inputs staged through shared memory (CudaOptions::gemv_row_gather, the
// default; the 32g and 64g fixtures take the warp GEMV) decode as the global-memory gathers
// do, within the bound between GEMV paths: the staged product rounds in another order (at
// K = 64 the fp16 rounding hid it: max abs 0 on an H200); so does one GEMV kernel for every
// input (CudaOptions::gemv_single_kernel, the default) against two. gptq_matmul_test's "row
// gather" and "one kernel" variants check the kernels themselves against a host reference.
TEST_P(CudaFixtureTest, RowGatherMatchesGlobalGather) {
  CudaOptions on, off, two;
  on.gemv_row_gather = true;
  off.gemv_row_gather = false;
  off.gemv_single_kernel = false;
  ExpectDecodeMatches(on, off, "row gather vs global gather");
  two.gemv_single_kernel = false;
  ExpectDecodeMatches(on, two, "one GEMV kernel vs two");
}

// Group slots in the warp GEMV (CudaOptions::gemv_group_slots, every group size) decode as
// the per-group fix-ups do, within the bound between GEMV paths (the sums are added in another
// order). gptq_matmul_test's "group slots" variants check the kernel against a host reference.
TEST_P(CudaFixtureTest, GroupSlotsMatchPerGroupFixups) {
  CudaOptions on, off;
  on.gemv_group_slots = 7;
  off.gemv_group_slots = 0;
  ExpectDecodeMatches(on, off, "group slots vs per-group fix-ups");
}

// 4-bit zero points in the warp GEMV (CudaOptions::gemv_packed_zeros), and none loaded where
// all are equal (gemv_uniform_zeros; the fixtures are sym=True, so all are), decode as the
// 8-bit ones do: the same values, so the same logits up to the atomics' order.
TEST_P(CudaFixtureTest, PackedZerosMatchBytes) {
  CudaOptions packed, bytes, uniform;
  packed.gemv_packed_zeros = true;
  packed.gemv_uniform_zeros = bytes.gemv_uniform_zeros = bytes.gemv_packed_zeros = false;
  uniform.gemv_uniform_zeros = true;
  ExpectDecodeMatches(packed, bytes, "packed zeros vs byte zeros");
  ExpectDecodeMatches(uniform, bytes, "no zero loads (all equal) vs byte zeros");
  // With no zero loads, the 4-bit copies of all-equal zero points are not uploaded either:
  // every GPTQ fixture has matrices the warp GEMV takes (fp32 has no zero points).
  auto a = CudaWith(uniform);
  auto b = CudaWith(packed);
  ASSERT_TRUE(a.ok() && b.ok());
  if (GetParam() == "fp32")
    EXPECT_EQ((*a)->memory_bytes(), (*b)->memory_bytes());
  else
    EXPECT_LT((*a)->memory_bytes(), (*b)->memory_bytes());
}

// DecodeArgmax picks on the device what Decode + a host argmax picks. Its run-ahead step is
// collected when the next call continues the batch, and is overwritten when the batch
// changes (a row dropped) or another call comes between (Decode).
// With CudaOptions::ids_by_kernel (the default) the advance kernel writes the ids into pinned
// host memory, a graph per run-ahead parity; without it they are copied after each step.
TEST_P(CudaFixtureTest, DecodeArgmaxRunAheadMatchesDecode) {
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  for (const bool by_kernel : {true, false}) {
    SCOPED_TRACE(by_kernel ? "ids written by the advance kernel" : "ids copied after each step");
    CudaOptions o;
    o.ids_by_kernel = by_kernel;
    auto dut_or = CudaWith(o);
    auto ref = CudaWith(CudaOptions{});
    ASSERT_TRUE(dut_or.ok()) << dut_or.status();
    ASSERT_TRUE(ref.ok()) << ref.status();
    ModelRunner* dut = dut_or->get();
    std::vector<int> slots = {0, 1, 2}, pos = {3, 17, 40};
    std::vector<int32_t> toks;
    std::vector<float> l(vocab_);
    for (int s = 0; s < 3; ++s) {
      const std::vector<int32_t> p(seq.begin(), seq.begin() + pos[s]);
      ASSERT_TRUE(dut->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
      ASSERT_TRUE((*ref)->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
      toks.push_back(seq[pos[s]]);
    }
    for (int step = 0; step < 12; ++step) {
      if (step == 6) {  // the batch changes: the step run ahead for three rows is not used
        slots.erase(slots.begin() + 1);
        pos.erase(pos.begin() + 1);
        toks.erase(toks.begin() + 1);
      }
      const size_t n = slots.size();
      std::vector<float> logits(n * vocab_);
      ASSERT_TRUE((*ref)->Decode(slots, pos, toks, absl::MakeSpan(logits)).ok());
      std::vector<int32_t> want(n), got(n, -1);
      for (size_t i = 0; i < n; ++i)
        want[i] = static_cast<int32_t>(
            std::max_element(logits.begin() + i * vocab_, logits.begin() + (i + 1) * vocab_) -
            (logits.begin() + i * vocab_));
      if (step == 9) {  // another call between two run-ahead calls
        ASSERT_TRUE(dut->Decode(slots, pos, toks, absl::MakeSpan(logits)).ok());
        for (size_t i = 0; i < n; ++i)
          got[i] = static_cast<int32_t>(
              std::max_element(logits.begin() + i * vocab_, logits.begin() + (i + 1) * vocab_) -
              (logits.begin() + i * vocab_));
      } else {
        // The last step without a step ahead, the next-to-last one collected by it.
        ASSERT_TRUE(dut->DecodeArgmax(slots, pos, toks, absl::MakeSpan(got), /*run_ahead=*/step < 11).ok());
      }
      EXPECT_EQ(got, want) << "step " << step;
      toks = got;
      for (int& p : pos) ++p;
    }
    // Nothing runs ahead after a call without run_ahead: the next call starts afresh.
    std::vector<float> logits(slots.size() * vocab_);
    ASSERT_TRUE((*ref)->Decode(slots, pos, toks, absl::MakeSpan(logits)).ok());
    std::vector<int32_t> got(slots.size());
    ASSERT_TRUE(dut->DecodeArgmax(slots, pos, toks, absl::MakeSpan(got), false).ok());
    for (size_t i = 0; i < slots.size(); ++i)
      EXPECT_EQ(got[i], std::max_element(logits.begin() + i * vocab_, logits.begin() + (i + 1) * vocab_) -
                            (logits.begin() + i * vocab_));
    std::vector<int32_t> one(1);
    const std::vector<int> bad_slot = {7}, p0 = {0};
    const std::vector<int32_t> t0 = {1};
    EXPECT_EQ(dut->DecodeArgmax(bad_slot, p0, t0, absl::MakeSpan(one), true).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// A batched decode step over three slots at different positions equals three single steps.
TEST_P(CudaFixtureTest, BatchedDecodeMatchesCpu) {
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  const int lens[3] = {3, 17, 40};
  for (int s = 0; s < 3; ++s) {
    std::vector<int32_t> p(seq.begin(), seq.begin() + lens[s]);
    std::vector<float> l(vocab_);
    ASSERT_TRUE(cuda_->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
    ASSERT_TRUE(cpu_->Prefill(s, 0, p, absl::MakeSpan(l)).ok());
  }
  const std::vector<int> slots = {0, 1, 2}, pos = {lens[0], lens[1], lens[2]};
  const std::vector<int32_t> toks = {seq[lens[0]], seq[lens[1]], seq[lens[2]]};
  std::vector<float> got(3 * vocab_), want(3 * vocab_);
  ASSERT_TRUE(cuda_->Decode(slots, pos, toks, absl::MakeSpan(got)).ok());
  ASSERT_TRUE(cpu_->Decode(slots, pos, toks, absl::MakeSpan(want)).ok());
  const auto [worst, rel] = Compare(got, want);
  std::printf("[ %s ] batched decode (3 slots) vs CPU: max abs %.5f, rel %.5f\n", GetParam().c_str(), worst, rel);
  EXPECT_LT(rel, 2e-2);
  EXPECT_LT(worst, 5e-2);
}

TEST_P(CudaFixtureTest, RejectsPositionsBeyondContext) {
  std::vector<float> logits(vocab_);
  const std::vector<int32_t> toks = {1, 2};
  EXPECT_EQ(cuda_->Prefill(0, 511, toks, absl::MakeSpan(logits)).code(), absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> out(4);
  EXPECT_EQ(cuda_->DecodeGreedy(0, 510, 1, absl::MakeSpan(out)).code(), absl::StatusCode::kInvalidArgument);
}

// Largest |logit - reference| over the prompt's positions, for a runner with options `co`.
double WorstPromptLogitError(const std::shared_ptr<const ModelWeights>& weights, const CudaOptions& co, int vocab,
                             const std::string& branch) {
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.max_context = 512;
  auto r = CreateCudaRunnerWithOptions(weights, opt, co);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return 1e9;
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  const auto& want = Refs()[branch]["logits_prompt_1_403_407_261_378"];
  std::vector<float> all(prompt.size() * vocab);
  EXPECT_TRUE((*r)->Prefill(0, 0, prompt, absl::MakeSpan(all), /*all_logits=*/true).ok());
  double worst = 0;
  for (size_t t = 0; t < prompt.size(); ++t)
    for (int v = 0; v < vocab; ++v) worst = std::max(worst, std::abs(all[t * vocab + v] - want[t][v].get<double>()));
  return worst;
}

// The scalar (non-tensor-core) GEMV layout and plain launches (no PDL) compute the same.
TEST_P(CudaFixtureTest, ScalarGemvWithoutPdlMatchesReference) {
  CudaOptions co;
  co.tensor_core_gemv = false;
  co.programmatic_launch = false;
  const double worst = WorstPromptLogitError(weights_, co, vocab_, GetParam());
  std::printf("[ %s ] scalar GEMV, no PDL: max |logit - reference| %.5f\n", GetParam().c_str(), worst);
  EXPECT_LT(worst, 2e-2);
  kernels::SetProgrammaticLaunch(true);
}

// The speed knobs (fixed attention split size, the warp GEMV's smallest K units, the split-K
// GEMV) compute the same; a split size the kernel cannot take, or an unknown attention mode,
// is refused.
TEST_P(CudaFixtureTest, SpeedKnobsMatchReference) {
  CudaOptions co;
  co.attn_split_keys = 128;
  co.gemv_warp_target_blocks = 100000;
  double worst = WorstPromptLogitError(weights_, co, vocab_, GetParam());
  std::printf("[ %s ] 128-key splits, smallest warp-GEMV units: max |logit - reference| %.5f\n", GetParam().c_str(),
              worst);
  EXPECT_LT(worst, 2e-2);
  CudaOptions split_k;
  split_k.warp_gemv = false;
  split_k.attn_split_keys = 32;
  worst = WorstPromptLogitError(weights_, split_k, vocab_, GetParam());
  std::printf("[ %s ] split-K GEMV, 32-key splits: max |logit - reference| %.5f\n", GetParam().c_str(), worst);
  EXPECT_LT(worst, 2e-2);
  CudaOptions bad;
  bad.attn_split_keys = 48;
  auto r = CreateCudaRunnerWithOptions(weights_, RunnerOptions{}, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("attn_split_keys"), std::string::npos) << r.status();
  bad = CudaOptions{};
  bad.rope_split_attention = 3;
  r = CreateCudaRunnerWithOptions(weights_, RunnerOptions{}, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rope_split_attention"), std::string::npos) << r.status();
}

// Decode steps with RoPE, the K/V write and attention as separate kernels (the path short
// prompts and shared-slot batches take), fused in the split kernel (the decode default) and
// fused in the cluster kernel (rope_split_attention 1: up to 1024 keys) all follow the CPU
// backend step by step over 64 positions. With dense fp32 weights the CUDA paths
// agree to 1e-3; with GPTQ weights the split-K GEMVs' atomic summation order differs run to
// run, and 64 steps of fp16 activations amplify that to ~0.02 (measured on an H200).
TEST_P(CudaFixtureTest, UnfusedDecodeAttentionMatchesFused) {
  CudaOptions co, cluster;
  co.fuse_rope_attention = false;
  cluster.rope_split_attention = 1;
  auto r = CudaWith(co);
  ASSERT_TRUE(r.ok()) << r.status();
  auto cr = CudaWith(cluster);
  ASSERT_TRUE(cr.ok()) << cr.status();
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  double paths = 0, fused_cpu = 0, unfused_cpu = 0, cluster_cpu = 0;
  auto worst = [&](double& w, const std::vector<float>& a, const std::vector<float>& b) {
    for (int v = 0; v < vocab_; ++v) w = std::max(w, static_cast<double>(std::abs(a[v] - b[v])));
  };
  for (size_t t = 0; t + 1 < seq.size(); ++t) {
    const auto fused = DecodeOne(*cuda_, 2, static_cast<int>(t), seq[t]);
    const auto unfused = DecodeOne(**r, 2, static_cast<int>(t), seq[t]);
    const auto by_cluster = DecodeOne(**cr, 2, static_cast<int>(t), seq[t]);
    const auto cpu = DecodeOne(*cpu_, 2, static_cast<int>(t), seq[t]);
    worst(paths, fused, unfused);
    worst(paths, fused, by_cluster);
    worst(fused_cpu, fused, cpu);
    worst(unfused_cpu, unfused, cpu);
    worst(cluster_cpu, by_cluster, cpu);
  }
  std::printf("[ %s ] %zu decode steps, max |logit difference|: CUDA paths %.6f; vs CPU: fused %.5f, unfused %.5f, "
              "cluster kernel %.5f\n", GetParam().c_str(), seq.size() - 1, paths, fused_cpu, unfused_cpu, cluster_cpu);
  EXPECT_LT(fused_cpu, 5e-2);
  EXPECT_LT(unfused_cpu, 5e-2);
  EXPECT_LT(cluster_cpu, 5e-2);
  EXPECT_LT(paths, GetParam() == "fp32" ? 1e-3 : 5e-2);
}

// The persistent decode kernel (opt-in: every layer of a one-row step in one launch) against
// the layered path and the CPU backend, step by step over 200 positions (the 64-token greedy
// sequence, repeated), and on the on-device greedy loop (CUDA graphs) against the reference
// tokens. A runner with one attention part per head streams up to 7 tiles of 32 keys per part
// (by default the keys are cut into parts of 16-32 here). The kernel takes the layouts with
// uniform groups: 32g and 64g here (main and 128g have K = 64 rows, less than one group; fp32
// is dense); elsewhere the runner must say it is not engaged.
TEST_P(CudaFixtureTest, PersistentDecodeMatchesLayeredAndCpu) {
  const bool fits = GetParam() == "gptq-4bit-32g-actorder_True" || GetParam() == "gptq-4bit-64g-actorder_True";
  CudaOptions on;
  on.persistent_decode = true;
  auto persistent = CudaWith(on);
  ASSERT_TRUE(persistent.ok()) << persistent.status();
  EXPECT_EQ(CudaPersistentDecodeActive(**persistent), fits);
  EXPECT_FALSE(CudaPersistentDecodeActive(*cuda_));  // off by default
  if (!fits) GTEST_SKIP() << "the persistent decode kernel does not take this layout";
  CudaOptions one_part = on;
  one_part.persistent_attn_parts = 1;
  one_part.persistent_blocks_per_sm = 3;
  auto single = CudaWith(one_part);
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_TRUE(CudaPersistentDecodeActive(**single));
  const std::vector<int> seq = Refs()[GetParam()]["greedy_from_bos_64"];
  double paths = 0, parts = 0, vs_cpu = 0;
  for (int t = 0; t < 200; ++t) {
    const int32_t tok = seq[t % seq.size()];
    const auto p = DecodeOne(**persistent, 1, t, tok);
    const auto l = DecodeOne(*cuda_, 1, t, tok);
    const auto one = DecodeOne(**single, 1, t, tok);
    const auto c = DecodeOne(*cpu_, 1, t, tok);
    for (int v = 0; v < vocab_; ++v) {
      paths = std::max(paths, static_cast<double>(std::abs(p[v] - l[v])));
      parts = std::max(parts, static_cast<double>(std::abs(one[v] - p[v])));
      vs_cpu = std::max(vs_cpu, static_cast<double>(std::abs(p[v] - c[v])));
    }
  }
  std::printf("[ %s ] 200 decode steps, max |logit difference|: persistent vs layered %.6f, one part (3 blocks/SM) "
              "vs default %.6f, persistent vs CPU %.5f\n", GetParam().c_str(), paths, parts, vs_cpu);
  EXPECT_LT(vs_cpu, 5e-2);
  EXPECT_LT(paths, 5e-2);
  EXPECT_LT(parts, 5e-2);
  // The on-device greedy loop (graph replays) gives the reference tokens.
  const std::vector<int> want = Refs()[GetParam()]["greedy_from_bos_64"];
  ExpectSameGreedy(GreedyOnDevice({1}, static_cast<int>(want.size()) - 1, persistent->get()), want,
                   "persistent kernel via DecodeGreedy");
  CudaOptions bad = on;
  bad.persistent_attn_parts = 33;
  auto r = CudaWith(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
}

INSTANTIATE_TEST_SUITE_P(Branches, CudaFixtureTest,
                         ::testing::Values("fp32", "main", "gptq-4bit-32g-actorder_True", "gptq-4bit-64g-actorder_True",
                                           "gptq-4bit-128g-actorder_True"),
                         BranchTestName);

}  // namespace
}  // namespace llama::testing
