// GPTQ GEMV (decode), GPTQ dequant + cuBLAS (prefill) and the dense fp16 paths against a
// float64 CPU reference on fresh random data, at the fixture's tiny shapes and Llama-2-7B's.
#include <cublas_v2.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include "kernels/dense_matmul.h"
#include "kernels/gptq_matmul.h"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {
namespace {

struct HostGptq {
  int K, N, G;
  std::vector<uint32_t> q;      // [K/8, N]
  std::vector<float> scales;    // [groups, N] (fp16 values)
  std::vector<uint8_t> zeros;   // [groups, N]
  std::vector<uint16_t> word_group;
  std::vector<int32_t> perm;    // empty = identity
  int groups() const { return (K + G - 1) / G; }
  double W(int k, int n) const {  // permuted row k
    const int g = k / G;
    const int qv = (q[static_cast<size_t>(k / 8) * N + n] >> (4 * (k % 8))) & 15;
    return static_cast<double>(scales[static_cast<size_t>(g) * N + n]) * (qv - zeros[static_cast<size_t>(g) * N + n]);
  }
};

// Zero points in [zlo, zhi]: 1..16 is AutoGPTQ's range (its stored zero + 1).
HostGptq RandomGptq(int K, int N, int G, bool act_order, int zlo = 1, int zhi = 16) {
  HostGptq h{K, N, G};
  std::uniform_int_distribution<uint32_t> bits;
  h.q.resize(static_cast<size_t>(K / 8) * N);
  for (auto& v : h.q) v = bits(Rng());
  h.scales = RoundToHalf(RandomFloats(static_cast<size_t>(h.groups()) * N, 0.002f, 0.03f));
  std::uniform_int_distribution<int> zd(zlo, zhi);
  h.zeros.resize(h.scales.size());
  for (auto& z : h.zeros) z = static_cast<uint8_t>(zd(Rng()));
  h.word_group.resize(K / 8);
  for (int w = 0; w < K / 8; ++w) h.word_group[w] = static_cast<uint16_t>(w * 8 / G);
  if (act_order) {
    h.perm.resize(K);
    std::iota(h.perm.begin(), h.perm.end(), 0);
    std::shuffle(h.perm.begin(), h.perm.end(), Rng());
  }
  return h;
}

// y[m, n] = sum_k x[m, perm[k]] W[k, n]
std::vector<double> Reference(const HostGptq& h, const std::vector<float>& x, int M) {
  std::vector<double> y(static_cast<size_t>(M) * h.N, 0.0);
  std::vector<double> wcol(h.K);
  for (int n = 0; n < h.N; ++n) {
    for (int k = 0; k < h.K; ++k) wcol[k] = h.W(k, n);
    for (int m = 0; m < M; ++m) {
      double acc = 0;
      for (int k = 0; k < h.K; ++k) acc += x[static_cast<size_t>(m) * h.K + (h.perm.empty() ? k : h.perm[k])] * wcol[k];
      y[static_cast<size_t>(m) * h.N + n] = acc;
    }
  }
  return y;
}

std::vector<uint32_t> MmaTiles(const HostGptq& h) {
  std::vector<uint32_t> t(h.q.size());
  kernels::RepackGptqForMma(h.q.data(), h.K, h.N, t.data());
  return t;
}

struct DeviceGptq {
  DeviceBuffer<uint32_t> q;
  std::unique_ptr<DeviceBuffer<uint32_t>> tiles;
  DeviceBuffer<__half> s;
  DeviceBuffer<uint8_t> z;
  std::unique_ptr<DeviceBuffer<uint8_t>> z4;
  DeviceBuffer<uint16_t> wg;
  DeviceBuffer<int32_t> perm;
  kernels::GptqMatrix m;
  explicit DeviceGptq(const HostGptq& h)
      : q(h.q), s(ToHalf(h.scales)), z(h.zeros), wg(h.word_group), perm(h.perm.empty() ? std::vector<int32_t>{0} : h.perm) {
    m.K = h.K;
    m.N = h.N;
    m.qweight = q.get();
    m.scales = s.get();
    m.zeros = z.get();
    m.seg[0] = {0, h.N, h.perm.empty() ? nullptr : perm.get(), wg.get()};
    m.act_order_layer = true;  // the "one kernel" variants take it with or without act-order
    m.num_groups = h.groups();
    m.min_group_rows = std::min(h.G, h.K - (h.groups() - 1) * h.G);
    m.group_rows = h.K % h.G == 0 ? h.G : h.groups() == 1 ? h.K : 0;
  }
  // Switches to the tensor-core layout (when the shape allows it).
  bool UseMma(const HostGptq& h) {
    if (!kernels::GptqMmaLayoutFits(h.K, h.N) || h.G % 16 != 0) return false;
    tiles = std::make_unique<DeviceBuffer<uint32_t>>(MmaTiles(h));
    m.qtiles = tiles->get();
    // The 4-bit zero points the engine uploads too (read by "packed zeros" variants).
    std::vector<uint8_t> packed(h.zeros.size() / 2);
    if (kernels::PackGptqZeros4(h.zeros.data(), h.zeros.size(), packed.data(), &m.zeros4_offset)) {
      z4 = std::make_unique<DeviceBuffer<uint8_t>>(packed);
      m.zeros4 = z4->get();
    }
    return true;
  }
};

// The decode GEMV kernels under test: the AutoGPTQ-layout split-K kernel, the tensor-core
// split-K kernel, and the streaming kernel with several grids / rings / prefetch distances
// (runs of tiles that start and end mid-column-tile, crossing tiles, idle warps).
struct Variant {
  const char* name;
  bool mma;
  kernels::GemvTuning tuning;
};
std::vector<Variant> Variants() {
  return {{"AutoGPTQ layout, split-K", false, {false, 2, 8, false}},
          {"tensor-core layout, split-K", true, {false, 2, 8, false}},
          {"stream, 2 blocks/SM, ring 4, prefetch 8", true, {true, 2, 8, false}},
          {"stream, 1 block/SM, ring 8, no prefetch", true, {true, 1, 0, true}},
          {"stream, 3 blocks/SM, ring 4, prefetch 32", true, {true, 3, 32, false}},
          {"warp, units <= 16 (1024 rows)", true, {false, 2, 8, false, true, 16}},
          {"warp, unit <= 5 (320 rows)", true, {false, 2, 8, false, true, 5}},
          {"warp, unit <= 2 (128 rows)", true, {false, 2, 8, false, true, 2}},
          {"warp, unit 1 (64 rows)", true, {false, 2, 8, false, true, 1}},
          {"warp, RMSNorm in every block", true, {false, 2, 8, false, true, 16, false, true}},
          {"warp, input in one round trip", true, {false, 2, 8, false, true, 16, false, true, 0, 2}},
          {"warp, input in one round trip, units <= 32", true, {false, 2, 8, false, true, 32, false, true, 0, 2}},
          {"warp, input in one round trip, unit <= 2", true, {false, 2, 8, false, true, 2, false, true, 0, 2}},
          // RMSNorm inputs of act-order matrices gathered from the row in shared memory.
          {"warp, row gather", true, {false, 2, 8, false, true, 16, false, true, 0, 1, true}},
          {"warp, row gather, units <= 32", true, {false, 2, 8, false, true, 32, false, true, 0, 1, true}},
          {"warp, row gather, unit <= 2", true, {false, 2, 8, false, true, 2, false, true, 0, 1, true}},
          // Group slots (every group size), with each staging and unit sizes that end mid-slot-set.
          {"warp, group slots, row gather", true, {false, 2, 8, false, true, 32, false, true, 0, 1, true, 7}},
          {"warp, group slots, one trip, unit <= 5", true, {false, 2, 8, false, true, 5, false, true, 0, 2, false, 7}},
          {"warp, group slots, two trips, unit <= 2", true, {false, 2, 8, false, true, 2, false, true, 0, 0, false, 7}},
          {"warp, group slots, input kernel", true, {false, 2, 8, false, true, 16, false, false, 0, 0, false, 7}},
          // 4-bit zero points (where the matrix has them), with each staging.
          {"warp, packed zeros, slots, row gather", true,
           {false, 2, 8, false, true, 32, false, true, 0, 2, true, 7, true}},
          {"warp, packed zeros, one trip, unit <= 5", true, {false, 2, 8, false, true, 5, false, true, 0, 2, false, 0, true}},
          {"warp, packed zeros, input kernel", true, {false, 2, 8, false, true, 16, false, false, 0, 0, false, 7, true}},
          // g32 units of up to 64 groups (packed group parameters; other group sizes unchanged):
          // whole 2048-row units, 40-group units (a last slot set cut short), the input kernel.
          {"warp, g32 wide units, slots, row gather, packed zeros", true,
           {false, 2, 8, false, true, 32, false, true, 0, 2, true, 7, true, false, true}},
          {"warp, g32 wide units, slots, one trip, unit <= 20", true,
           {false, 2, 8, false, true, 20, false, true, 0, 2, false, 7, false, false, true}},
          {"warp, g32 wide units, slots, input kernel", true,
           {false, 2, 8, false, true, 32, false, false, 0, 0, false, 7, false, false, true}},
          // One kernel for every input (the row gather for act-order RMSNorm inputs, with the
          // indices loaded before the PDL wait; one trip for the others), as the engine's
          // tuning and with short units.
          {"warp, one kernel, slots, row gather, one trip, g32 wide, packed zeros", true,
           {false, 2, 8, false, true, 32, false, true, 0, 2, true, 7, true, false, true, true}},
          {"warp, one kernel, slots, unit <= 5", true,
           {false, 2, 8, false, true, 5, false, true, 0, 2, true, 7, false, false, false, true}}};
}
// Applies a variant's tuning for the scope; restores the default after.
struct ScopedTuning {
  explicit ScopedTuning(const kernels::GemvTuning& t) { kernels::SetGemvTuning(t); }
  ~ScopedTuning() { kernels::SetGemvTuning(kernels::GemvTuning{}); }
};

// One row of fp16 x through LaunchGptqGemv under the current tuning (the warp GEMV's scratch
// given), into a zeroed output; warp_target_blocks as LaunchGptqGemv's.
std::vector<float> OneRow(const kernels::GptqMatrix& m, const DeviceBuffer<__half>& x, const DeviceBuffer<__half>& xfrag,
                          const DeviceBuffer<float>& xsum, int warp_target_blocks = 0) {
  DeviceBuffer<float> out(static_cast<size_t>(m.N));
  out.Zero();
  kernels::GemvInput in;
  in.x = x.get();
  in.ldx = m.K;
  in.xfrag = xfrag.get();
  in.xsum = xsum.get();
  EXPECT_EQ(kernels::LaunchGptqGemv(m, in, out.get(), m.N, 1, nullptr, warp_target_blocks), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return out.Download();
}
// ||a - b|| / ||b|| between two device results.
double RelTo(const std::vector<float>& a, const std::vector<float>& b) {
  return RelError(a, std::vector<double>(b.begin(), b.end()));
}

struct Case {
  int K, N, G;
  bool act_order;
  int M;
};
std::string Name(const ::testing::TestParamInfo<Case>& i) {
  const Case& c = i.param;
  return "K" + std::to_string(c.K) + "_N" + std::to_string(c.N) + "_G" + std::to_string(c.G) +
         (c.act_order ? "_actorder" : "") + "_M" + std::to_string(c.M);
}

class GptqMatmulTest : public ::testing::TestWithParam<Case> {};

TEST_P(GptqMatmulTest, MatchesReference) {
  SKIP_WITHOUT_CUDA();
  const Case c = GetParam();
  const HostGptq h = RandomGptq(c.K, c.N, c.G, c.act_order);
  const std::vector<float> x = RoundToHalf(RandomFloats(static_cast<size_t>(c.M) * c.K));
  const std::vector<double> ref = Reference(h, x, c.M);
  for (const Variant& v : Variants()) {
  SCOPED_TRACE(v.name);
  ScopedTuning tuning(v.tuning);
  DeviceGptq d(h);
  if (v.mma && !d.UseMma(h)) continue;
  DeviceBuffer<__half> dx(ToHalf(x));
  if (c.M <= kernels::kGemvMaxRows) {
    // Accumulates into a non-zero output (the residual-stream use).
    const std::vector<float> base = RandomFloats(static_cast<size_t>(c.M) * c.N);
    DeviceBuffer<float> out(base);
    kernels::GemvInput in;
    in.x = dx.get();
    in.ldx = c.K;
    DeviceBuffer<__half> xfrag(static_cast<size_t>(c.K));
    DeviceBuffer<float> xsum(static_cast<size_t>(c.K / 32));
    in.xfrag = xfrag.get();
    in.xsum = xsum.get();
    ASSERT_EQ(kernels::LaunchGptqGemv(d.m, in, out.get(), c.N, c.M, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> got = out.Download();
    std::vector<double> want(ref);
    for (size_t i = 0; i < want.size(); ++i) want[i] += base[i];
    EXPECT_LT(RelError(got, want), 2e-3);
  }
  // Prefill path: W^T dequantized in stored row order, x gathered into that order, cuBLAS.
  DeviceBuffer<__half> wd(static_cast<size_t>(c.K) * c.N), xg(x.size());
  DeviceBuffer<float> out2(static_cast<size_t>(c.M) * c.N);
  cublasHandle_t blas;
  ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(kernels::LaunchGptqDequant(d.m, wd.get(), nullptr), cudaSuccess);
  const __half* xin = dx.get();
  if (d.m.seg[0].perm) {
    ASSERT_EQ(kernels::LaunchGatherColumns(dx.get(), c.K, d.m.seg[0].perm, c.M, c.K, xg.get(), nullptr), cudaSuccess);
    xin = xg.get();
  }
  ASSERT_EQ(kernels::GemmF16(blas, c.M, c.N, c.K, xin, c.K, wd.get(), c.K, true, out2.get(), c.N, 1.f, 0.f),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cublasDestroy(blas);
  EXPECT_LT(RelError(out2.Download(), ref), 2e-3);
  }
}

// Zero points all equal (AutoGPTQ sym=True: 8; and 1, the low end): the warp GEMV that loads
// none (GemvTuning::warp_uniform_zeros) computes what the one that loads them (packed or
// bytes) does, with two stagings, and matches the host reference. Not bit for bit: the K
// units add into the output with atomics, in no fixed order (run to run: ~1e-7 relative).
TEST(GptqGemvUniformZerosTest, MatchesLoadedZeros) {
  SKIP_WITHOUT_CUDA();
  for (const Case& c : {Case{4096, 4096, 128, false, 1}, Case{4096, 11008, 32, true, 1}, Case{11008, 4096, 64, true, 1},
                        Case{64, 32, 32, true, 1}}) {
    for (const int z : {8, 1}) {
      SCOPED_TRACE(Name(::testing::TestParamInfo<Case>(c, 0)) + " zero " + std::to_string(z));
      const HostGptq h = RandomGptq(c.K, c.N, c.G, c.act_order, z, z);
      DeviceGptq d(h);
      ASSERT_TRUE(d.UseMma(h));
      d.m.uniform_zero = kernels::UniformGptqZero(h.zeros.data(), h.zeros.size());
      ASSERT_EQ(d.m.uniform_zero, z);
      const std::vector<float> x = RoundToHalf(RandomFloats(c.K));
      DeviceBuffer<__half> dx(ToHalf(x)), xfrag(c.K);
      DeviceBuffer<float> xsum(c.K / 32);
      auto run = [&](kernels::GemvTuning t) {
        ScopedTuning tuning(t);
        return OneRow(d.m, dx, xfrag, xsum);
      };
      // warp GEMV, units <= 32, one trip, group slots; then two trips, unit <= 5.
      kernels::GemvTuning loads{false, 2, 8, false, true, 32, false, true, 0, 2, false, 7, true, false};
      kernels::GemvTuning none = loads;
      none.warp_uniform_zeros = true;
      const std::vector<float> want = run(loads), got = run(none);
      EXPECT_LT(RelTo(got, want), 1e-5);
      EXPECT_LT(RelError(got, Reference(h, x, 1)), 2e-3);
      kernels::GemvTuning wide = none;  // g32: units of up to 64 groups (the others: unchanged)
      wide.warp_g32_wide = true;
      EXPECT_LT(RelTo(run(wide), want), 1e-5) << "g32 wide units";
      loads.warp_kb = none.warp_kb = 5;
      loads.warp_one_trip = none.warp_one_trip = 0;
      loads.warp_packed_zeros = false;
      EXPECT_LT(RelTo(run(none), run(loads)), 1e-5) << "two trips, byte zeros";
    }
  }
}

// A K-unit target for one launch (LaunchGptqGemv's warp_target_blocks; the runner sizes the
// q|k|v, o_proj and down GEMVs apart with CudaOptions::*_gemv_target_blocks) changes only how
// K is cut: the output is the same up to the atomics' order, and the host's. At 132 SMs:
// q|k|v (4096 x 12288) in units of 16 (the tuning's target), 32, 32 and 6 blocks; o_proj
// (4096 x 4096) in units of 8 (its default target, 256) and 4; down (11008 x 4096) in units
// of 22 (target 256).
TEST(GptqGemvTargetBlocksTest, LaunchTargetCutsKConsistently) {
  SKIP_WITHOUT_CUDA();
  struct Shape {
    int K, N;
    std::vector<int> targets;
  };
  for (const Shape& sh : {Shape{4096, 12288, {1, 192, 1000}}, Shape{4096, 4096, {256, 512}},
                          Shape{11008, 4096, {256}}}) {
    SCOPED_TRACE(::testing::Message() << sh.K << " x " << sh.N);
    const HostGptq h = RandomGptq(sh.K, sh.N, 128, false);
    DeviceGptq d(h);
    ASSERT_TRUE(d.UseMma(h));
    const std::vector<float> x = RoundToHalf(RandomFloats(sh.K));
    DeviceBuffer<__half> dx(ToHalf(x)), xfrag(sh.K);
    DeviceBuffer<float> xsum(sh.K / 32);
    ScopedTuning tuning(kernels::GemvTuning{false, 2, 8, false, true, 32, false, true, 0, 2, false, 7, true, false});
    const std::vector<float> base = OneRow(d.m, dx, xfrag, xsum);  // the tuning's target
    EXPECT_LT(RelError(base, Reference(h, x, 1)), 2e-3);
    for (const int target : sh.targets)
      EXPECT_LT(RelTo(OneRow(d.m, dx, xfrag, xsum, target), base), 1e-5) << "target " << target;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GptqMatmulTest,
    ::testing::Values(
        // Fixture shapes: K=64 with group 128 (one partial group), K=192 (128 + 64), N=32.
        Case{64, 192, 128, false, 1}, Case{64, 192, 128, true, 3}, Case{192, 64, 128, true, 8},
        Case{64, 32, 32, true, 1}, Case{64, 32, 64, false, 5}, Case{192, 64, 32, true, 12},
        Case{64, 192, 128, true, 37},
        // Llama-2-7B shapes.
        Case{4096, 4096, 128, false, 1}, Case{4096, 4096, 64, true, 8}, Case{4096, 11008, 128, false, 1},
        Case{4096, 11008, 32, true, 2}, Case{11008, 4096, 128, true, 1}, Case{11008, 4096, 32, true, 8},
        Case{4096, 4096, 32, true, 64},
        // One row at g32 with K >= 2048.
        Case{4096, 4096, 32, true, 1}, Case{4096, 1024, 32, false, 1}),
    Name);

// Q|K|V-style fusion: three segments side by side along N, each with its own act-order
// permutation, and the GEMV computing its input in the prologue (RMSNorm, SwiGLU,
// attention-split combine) instead of reading fp16 x.
TEST(GptqGemvFusedTest, SegmentsAndProloguesMatchReference) {
  SKIP_WITHOUT_CUDA();
  // n1 == 0: one segment (an o_proj), where the warp GEMV merges attention splits itself.
  // Zero points by shape, in turn: 0..15 (4-bit copy, offset 0), 0..16 (no 4-bit copy), 1..16.
  int shape = 0;
  for (const auto& [K, n0, n1, G, M] : std::vector<std::tuple<int, int, int, int, int>>{
           {64, 64, 32, 32, 1}, {64, 64, 32, 128, 3}, {4096, 512, 256, 128, 1}, {1024, 256, 128, 32, 8},
           {4096, 512, 0, 128, 1}, {1024, 256, 0, 32, 1}, {4096, 512, 256, 32, 1}, {2048, 192, 64, 32, 1}}) {
    const int N = n0 + 2 * n1, nseg = n1 > 0 ? 3 : 1;
    const int bounds[4] = {0, n0, n0 + n1, N};
    const int zcase = shape++ % 3;
    HostGptq h = RandomGptq(K, N, G, false, zcase == 2 ? 1 : 0, zcase == 0 ? 15 : 16);
    std::vector<std::vector<int32_t>> perms(3);
    for (const Variant& v : Variants()) {
    SCOPED_TRACE(v.name);
    ScopedTuning tuning(v.tuning);
    DeviceGptq d(h);
    if (v.mma && !d.UseMma(h)) continue;
    std::vector<std::unique_ptr<DeviceBuffer<int32_t>>> dperms;
    d.m.num_segments = nseg;
    for (int sgi = 0; sgi < nseg; ++sgi) {
      perms[sgi].resize(K);
      std::iota(perms[sgi].begin(), perms[sgi].end(), 0);
      std::shuffle(perms[sgi].begin(), perms[sgi].end(), Rng());
      dperms.push_back(std::make_unique<DeviceBuffer<int32_t>>(perms[sgi]));
      d.m.seg[sgi] = {bounds[sgi], bounds[sgi + 1], dperms.back()->get(), d.wg.get()};
    }
    const int hd = 8, heads = K / hd, splits = 3;
    for (const auto kind : {kernels::GemvSource::kHalf, kernels::GemvSource::kRmsNorm, kernels::GemvSource::kSwiGlu,
                            kernels::GemvSource::kAttention}) {
      SCOPED_TRACE(::testing::Message() << "K=" << K << " N=" << N << " G=" << G << " M=" << M << " source "
                                        << static_cast<int>(kind));
      // Host inputs and the fp16 x they must produce.
      std::vector<float> x(static_cast<size_t>(M) * K);
      kernels::GemvInput in;
      in.kind = kind;
      std::vector<std::unique_ptr<DeviceBuffer<float>>> keep;
      std::unique_ptr<DeviceBuffer<__half>> xh;
      std::unique_ptr<DeviceBuffer<float2>> mlbuf;
      if (kind == kernels::GemvSource::kHalf) {
        x = RoundToHalf(RandomFloats(x.size()));
        xh = std::make_unique<DeviceBuffer<__half>>(ToHalf(x));
        in.x = xh->get();
        in.ldx = K;
      } else if (kind == kernels::GemvSource::kRmsNorm) {
        const auto resid = RandomFloats(x.size(), -3.f, 3.f), w = RandomFloats(K, 0.5f, 1.5f);
        for (int m = 0; m < M; ++m) {
          double ss = 0;
          for (int k = 0; k < K; ++k) ss += static_cast<double>(resid[m * K + k]) * resid[m * K + k];
          const float inv = static_cast<float>(1.0 / std::sqrt(ss / K + 1e-5));
          for (int k = 0; k < K; ++k) x[m * K + k] = __half2float(__float2half(resid[m * K + k] * inv * w[k]));
        }
        keep.push_back(std::make_unique<DeviceBuffer<float>>(resid));
        keep.push_back(std::make_unique<DeviceBuffer<float>>(w));
        in.src = keep[0]->get();
        in.norm_weight = keep[1]->get();
        in.eps = 1e-5f;
      } else if (kind == kernels::GemvSource::kSwiGlu) {
        const auto gu = RandomFloats(static_cast<size_t>(M) * 2 * K, -4.f, 4.f);
        for (int m = 0; m < M; ++m)
          for (int k = 0; k < K; ++k) {
            const float g = gu[m * 2 * K + k], u = gu[m * 2 * K + K + k];
            x[m * K + k] = __half2float(__float2half(g / (1.f + std::exp(-g)) * u));
          }
        keep.push_back(std::make_unique<DeviceBuffer<float>>(gu));
        in.src = keep[0]->get();
      } else {
        std::vector<float2> ml(static_cast<size_t>(M) * heads * splits);
        const auto mx = RandomFloats(ml.size(), -2.f, 2.f), sm = RandomFloats(ml.size(), 0.5f, 4.f);
        for (size_t i = 0; i < ml.size(); ++i) ml[i] = make_float2(mx[i], i % 5 == 4 ? 0.f : sm[i]);
        for (int m = 0; m < M; ++m) ml[(static_cast<size_t>(m) * heads) * splits] = make_float2(0.f, 1.f);
        auto acc = RandomFloats(ml.size() * hd);
        for (size_t i = 0; i < ml.size(); ++i)  // an empty split's acc is never written: poison it
          if (ml[i].y == 0.f) std::fill(acc.begin() + i * hd, acc.begin() + (i + 1) * hd, NAN);
        for (int m = 0; m < M; ++m)
          for (int k = 0; k < K; ++k) {
            const size_t first = (static_cast<size_t>(m) * heads + k / hd) * splits;
            double big = -1e30, num = 0, den = 0;
            for (int sp = 0; sp < splits; ++sp) big = std::max(big, static_cast<double>(ml[first + sp].x));
            for (int sp = 0; sp < splits; ++sp)
              if (ml[first + sp].y > 0) {
                const double e = std::exp(ml[first + sp].x - big);
                den += e * ml[first + sp].y;
                num += e * acc[(first + sp) * hd + k % hd];
              }
            x[m * K + k] = __half2float(__float2half(static_cast<float>(num / den)));
          }
        mlbuf = std::make_unique<DeviceBuffer<float2>>(ml);
        keep.push_back(std::make_unique<DeviceBuffer<float>>(acc));
        in.attn_ml = mlbuf->get();
        in.attn_acc = keep[0]->get();
        in.attn_splits = splits;
        in.head_dim = hd;
      }
      std::vector<double> ref(static_cast<size_t>(M) * N);
      for (int sgi = 0; sgi < nseg; ++sgi)
        for (int n = bounds[sgi]; n < (nseg == 1 ? N : bounds[sgi + 1]); ++n)
          for (int m = 0; m < M; ++m) {
            double a = 0;
            for (int k = 0; k < K; ++k) a += x[static_cast<size_t>(m) * K + perms[sgi][k]] * h.W(k, n);
            ref[static_cast<size_t>(m) * N + n] = a;
          }
      DeviceBuffer<float> out(ref.size());
      out.Zero();
      DeviceBuffer<__half> xfrag(static_cast<size_t>(3) * K);
      DeviceBuffer<float> xsum(static_cast<size_t>(3) * K / 32);
      in.xfrag = xfrag.get();
      in.xsum = xsum.get();
      ASSERT_EQ(kernels::LaunchGptqGemv(d.m, in, out.get(), N, M, nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      // fp16 rounding of x can flip at a boundary between host and device math: allow a
      // little more than the plain GEMV.
      EXPECT_LT(RelError(out.Download(), ref), 3e-3);
      // Prefill: W^T in stored row order, bit-exact fp16 of scale * (q - zero), and x
      // gathered into each segment's order.
      DeviceBuffer<__half> wd(static_cast<size_t>(K) * N), xg(static_cast<size_t>(M) * K), dxh(ToHalf(x));
      ASSERT_EQ(kernels::LaunchGptqDequant(d.m, wd.get(), nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto wdh = FromHalf(wd.Download());
      for (int n = 0; n < N; n += 5)
        for (int k = 0; k < K; k += 3)
          ASSERT_EQ(wdh[static_cast<size_t>(n) * K + k], __half2float(__float2half(static_cast<float>(h.W(k, n)))))
              << "n=" << n << " k=" << k;
      for (int sgi = 0; sgi < nseg; ++sgi) {
        if (!d.m.seg[sgi].perm) continue;
        ASSERT_EQ(kernels::LaunchGatherColumns(dxh.get(), K, d.m.seg[sgi].perm, M, K, xg.get(), nullptr), cudaSuccess);
        const auto xgh = FromHalf(xg.Download());
        for (int m = 0; m < M; ++m)
          for (int k = 0; k < K; ++k)
            ASSERT_EQ(xgh[static_cast<size_t>(m) * K + k], x[static_cast<size_t>(m) * K + perms[sgi][k]]);
      }
    }
    }
  }
}

// The 4-bit zero points the warp GEMV reads (host packing; runs without a GPU): two per
// byte, even column low, with the offset that fits every zero; none when no offset does.
TEST(PackGptqZeros4Test, PacksTwoPerByteWithAnOffsetThatFits) {
  uint8_t out[2] = {0xAA, 0xAA};
  int offset = -1;
  const uint8_t low[4] = {0, 15, 3, 4};  // 0..15: offset 0
  ASSERT_TRUE(kernels::PackGptqZeros4(low, 4, out, &offset));
  EXPECT_EQ(offset, 0);
  EXPECT_EQ(out[0], 0xF0);
  EXPECT_EQ(out[1], 0x43);
  const uint8_t autogptq[4] = {1, 16, 5, 2};  // 1..16 (AutoGPTQ's stored zero + 1): offset 1
  ASSERT_TRUE(kernels::PackGptqZeros4(autogptq, 4, out, &offset));
  EXPECT_EQ(offset, 1);
  EXPECT_EQ(out[0], 0xF0);
  EXPECT_EQ(out[1], 0x14);
  const uint8_t both_ends[2] = {0, 16};  // 17 values: no 4-bit copy, output untouched
  out[0] = 0xAA;
  EXPECT_FALSE(kernels::PackGptqZeros4(both_ends, 2, out, &offset));
  EXPECT_EQ(out[0], 0xAA);
  EXPECT_EQ(offset, 1);
  EXPECT_FALSE(kernels::PackGptqZeros4(low, 3, out, &offset));  // odd count
}

TEST(DenseMatmulTest, GemvAndGemmMatchReference) {
  SKIP_WITHOUT_CUDA();
  for (const auto& [K, N, M] : std::vector<std::tuple<int, int, int>>{{64, 512, 1}, {64, 512, 5}, {4096, 32000, 1},
                                                                       {4096, 4096, 8}, {4096, 32000, 24}}) {
    SCOPED_TRACE(::testing::Message() << "K=" << K << " N=" << N << " M=" << M);
    const std::vector<float> w = RoundToHalf(RandomFloats(static_cast<size_t>(N) * K, -0.05f, 0.05f));
    const std::vector<float> x = RoundToHalf(RandomFloats(static_cast<size_t>(M) * K));
    std::vector<double> ref(static_cast<size_t>(M) * N);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double a = 0;
        for (int k = 0; k < K; ++k) a += static_cast<double>(x[static_cast<size_t>(m) * K + k]) * w[static_cast<size_t>(n) * K + k];
        ref[static_cast<size_t>(m) * N + n] = a;
      }
    DeviceBuffer<__half> dw(ToHalf(w)), dx(ToHalf(x));
    DeviceBuffer<float> out(static_cast<size_t>(M) * N);
    if (M <= 8) {
      ASSERT_EQ(kernels::LaunchDenseGemv(dw.get(), K, N, dx.get(), K, out.get(), N, M, false, nullptr), cudaSuccess);
    } else {
      cublasHandle_t blas;
      ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
      ASSERT_EQ(kernels::GemmF16(blas, M, N, K, dx.get(), K, dw.get(), K, true, out.get(), N, 1.f, 0.f),
                CUBLAS_STATUS_SUCCESS);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      cublasDestroy(blas);
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(RelError(out.Download(), ref), 1e-4);
  }
}

}  // namespace
}  // namespace llama::testing
