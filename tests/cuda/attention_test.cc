// RoPE + KV-cache write, decode (flash-decoding) attention and prefill (cuBLAS) attention
// against float64 CPU references: 32 heads of 128 with contexts up to 4096, and the
// fixture's grouped-query shape (8 heads, 4 KV heads, head_dim 8).
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/rope.h"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {
namespace {

struct Shape {
  int H, KVH, hd, max_ctx, slots;
};

size_t CacheIndex(const Shape& s, int slot, int pos, int kvh) {
  return ((static_cast<size_t>(slot) * s.max_ctx + pos) * s.KVH + kvh) * s.hd;
}

// out[h, :] for one query row attending keys 0..n_keys-1 of `slot`.
std::vector<double> RefAttention(const Shape& s, const std::vector<float>& q, const std::vector<float>& kc,
                                 const std::vector<float>& vc, int slot, int n_keys) {
  std::vector<double> out(static_cast<size_t>(s.H) * s.hd, 0.0);
  std::vector<double> p(n_keys);
  for (int h = 0; h < s.H; ++h) {
    const int kvh = h / (s.H / s.KVH);
    double mx = -1e300;
    for (int j = 0; j < n_keys; ++j) {
      double d = 0;
      for (int i = 0; i < s.hd; ++i) d += static_cast<double>(q[h * s.hd + i]) * kc[CacheIndex(s, slot, j, kvh) + i];
      p[j] = d / std::sqrt(static_cast<double>(s.hd));
      mx = std::max(mx, p[j]);
    }
    double sum = 0;
    for (int j = 0; j < n_keys; ++j) sum += (p[j] = std::exp(p[j] - mx));
    for (int j = 0; j < n_keys; ++j)
      for (int i = 0; i < s.hd; ++i) out[h * s.hd + i] += p[j] / sum * vc[CacheIndex(s, slot, j, kvh) + i];
  }
  return out;
}

TEST(RopeTest, RotatesHalvesAndWritesCache) {
  SKIP_WITHOUT_CUDA();
  for (const Shape s : {Shape{32, 32, 128, 4096, 2}, Shape{8, 4, 8, 512, 3}}) {
    const int rows = 4;
    const int n = (s.H + 2 * s.KVH) * s.hd;
    const std::vector<float> qkv = RandomFloats(static_cast<size_t>(rows) * n, -2.f, 2.f);
    std::uniform_int_distribution<int> pd(0, s.max_ctx - 1), sd(0, s.slots - 1);
    std::vector<int32_t> pos(rows), slot(rows);
    for (int r = 0; r < rows; ++r) { pos[r] = r == 0 ? s.max_ctx - 1 : pd(Rng()); slot[r] = sd(Rng()); }
    if (slot[1] == slot[2] && pos[1] == pos[2]) pos[2] = (pos[2] + 1) % s.max_ctx;
    const size_t cache = static_cast<size_t>(s.slots) * s.max_ctx * s.KVH * s.hd;
    DeviceBuffer<float> dqkv(qkv);
    DeviceBuffer<int32_t> dpos(pos), dslot(slot);
    DeviceBuffer<__half> q(static_cast<size_t>(rows) * s.H * s.hd), kc(cache), vc(cache);
    DeviceBuffer<float2> table(static_cast<size_t>(s.max_ctx) * s.hd / 2);
    ASSERT_EQ(kernels::LaunchRopeTable(table.get(), s.max_ctx, s.hd, 10000.f, nullptr), cudaSuccess);
    const kernels::RopeShape rs{s.H, s.KVH, s.hd, s.max_ctx};
    ASSERT_EQ(kernels::LaunchRopeStoreKv(dqkv.get(), n, dslot.get(), dpos.get(), table.get(), rs, q.get(), kc.get(),
                                         vc.get(), rows, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto hq = FromHalf(q.Download()), hk = FromHalf(kc.Download()), hv = FromHalf(vc.Download());
    std::vector<float> got;
    std::vector<double> want;
    auto rope = [&](const float* x, int i, int p) {
      const int half = s.hd / 2;
      const double ang = p * std::pow(10000.0, -2.0 * (i % half) / s.hd);
      return i < half ? x[i] * std::cos(ang) - x[i + half] * std::sin(ang)
                      : x[i] * std::cos(ang) + x[i - half] * std::sin(ang);
    };
    for (int r = 0; r < rows; ++r) {
      const float* row = qkv.data() + static_cast<size_t>(r) * n;
      for (int h = 0; h < s.H; ++h)
        for (int i = 0; i < s.hd; ++i) {
          want.push_back(rope(row + h * s.hd, i, pos[r]));
          got.push_back(hq[(static_cast<size_t>(r) * s.H + h) * s.hd + i]);
        }
      for (int h = 0; h < s.KVH; ++h)
        for (int i = 0; i < s.hd; ++i) {
          want.push_back(rope(row + (s.H + h) * s.hd, i, pos[r]));
          got.push_back(hk[CacheIndex(s, slot[r], pos[r], h) + i]);
          want.push_back(row[(s.H + s.KVH + h) * s.hd + i]);
          got.push_back(hv[CacheIndex(s, slot[r], pos[r], h) + i]);
        }
    }
    EXPECT_LT(RelError(got, want), 1e-3) << "H=" << s.H << " hd=" << s.hd;
  }
}

struct CacheData {
  std::vector<float> k, v;  // fp16-rounded
  DeviceBuffer<__half> dk, dv;
  explicit CacheData(const Shape& s)
      : k(RoundToHalf(RandomFloats(static_cast<size_t>(s.slots) * s.max_ctx * s.KVH * s.hd))),
        v(RoundToHalf(RandomFloats(k.size()))), dk(ToHalf(k)), dv(ToHalf(v)) {}
};

TEST(DecodeAttentionTest, MatchesReferenceUpTo4096Keys) {
  SKIP_WITHOUT_CUDA();
  for (const Shape s : {Shape{32, 32, 128, 4096, 2}, Shape{8, 4, 8, 512, 3}}) {
    CacheData c(s);
    // Rows with their own slots and lengths: 1 key, a split boundary, long contexts.
    std::vector<int32_t> pos = {0, 127, 128, std::min(1000, s.max_ctx - 2), s.max_ctx - 1};
    std::vector<int32_t> slot = {0, 1, 0, static_cast<int32_t>(s.slots - 1), 1};
    const int rows = static_cast<int>(pos.size());
    const std::vector<float> q = RoundToHalf(RandomFloats(static_cast<size_t>(rows) * s.H * s.hd, -3.f, 3.f));
    DeviceBuffer<__half> dq(ToHalf(q)), out(q.size());
    DeviceBuffer<int32_t> dpos(pos), dslot(slot);
    for (const auto& [split_keys, extra] : std::vector<std::pair<int, int>>{{128, 1}, {64, 2}, {32, 1}}) {
      const int splits = (s.max_ctx + split_keys - 1) / split_keys * extra;  // extra splits: empty partials
      DeviceBuffer<float2> ml(static_cast<size_t>(rows) * s.H * splits);
      DeviceBuffer<float> acc(static_cast<size_t>(rows) * s.H * splits * s.hd);
      const kernels::AttnShape as{s.H, s.KVH, s.hd, s.max_ctx};
      // Combined by the last split block of each head (launched twice: the arrival counters
      // must be left at zero), then by the separate combine kernel.
      DeviceBuffer<uint32_t> arrivals(static_cast<size_t>(rows) * s.H);
      arrivals.Zero();
      for (int rep = 0; rep < 2; ++rep) {
        out.Zero();
        ASSERT_EQ(kernels::LaunchDecodeAttention(dq.get(), c.dk.get(), c.dv.get(), dslot.get(), dpos.get(), as, rows,
                                                 splits, split_keys, ml.get(), acc.get(), nullptr, nullptr, 0,
                                                 out.get(), arrivals.get()), cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      }
      const auto fused = FromHalf(out.Download());
      for (uint32_t a : arrivals.Download()) ASSERT_EQ(a, 0u);
      out.Zero();
      ASSERT_EQ(kernels::LaunchAttentionCombine(ml.get(), acc.get(), as, rows, splits, out.get(), nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto got = FromHalf(out.Download());
      ASSERT_EQ(fused, got) << "in-kernel combine differs from the combine kernel";
      for (int r = 0; r < rows; ++r) {
        const std::vector<float> qr(q.begin() + static_cast<size_t>(r) * s.H * s.hd,
                                    q.begin() + static_cast<size_t>(r + 1) * s.H * s.hd);
        const auto want = RefAttention(s, qr, c.k, c.v, slot[r], pos[r] + 1);
        const std::vector<float> gr(got.begin() + static_cast<size_t>(r) * s.H * s.hd,
                                    got.begin() + static_cast<size_t>(r + 1) * s.H * s.hd);
        EXPECT_LT(RelError(gr, want), 3e-3) << "hd=" << s.hd << " keys=" << pos[r] + 1 << " splits=" << splits << " x " << split_keys;
      }
    }
  }
}

TEST(PrefillAttentionTest, CausalMatchesReference) {
  SKIP_WITHOUT_CUDA();
  for (const Shape s : {Shape{32, 32, 128, 1024, 2}, Shape{8, 4, 8, 512, 3}}) {
    CacheData c(s);
    const int slot = 1, start = 100, T = 300, q_block = 128;
    const std::vector<float> q = RoundToHalf(RandomFloats(static_cast<size_t>(T) * s.H * s.hd, -3.f, 3.f));
    DeviceBuffer<__half> dq(ToHalf(q)), out(q.size());
    const kernels::AttnShape as{s.H, s.KVH, s.hd, s.max_ctx};
    DeviceBuffer<char> scratch(kernels::PrefillAttentionScratchBytes(as, q_block));
    cublasHandle_t blas;
    ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(kernels::LaunchPrefillAttention(blas, dq.get(), c.dk.get(), c.dv.get(), slot, start, T, as, q_block,
                                              scratch.get(), out.get(), nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cublasDestroy(blas);
    const auto got = FromHalf(out.Download());
    for (int t : {0, 1, 127, 128, 200, T - 1}) {
      const std::vector<float> qr(q.begin() + static_cast<size_t>(t) * s.H * s.hd,
                                  q.begin() + static_cast<size_t>(t + 1) * s.H * s.hd);
      const auto want = RefAttention(s, qr, c.k, c.v, slot, start + t + 1);
      const std::vector<float> gr(got.begin() + static_cast<size_t>(t) * s.H * s.hd,
                                  got.begin() + static_cast<size_t>(t + 1) * s.H * s.hd);
      EXPECT_LT(RelError(gr, want), 3e-3) << "hd=" << s.hd << " row " << t;
    }
  }
}

}  // namespace
}  // namespace llama::testing
