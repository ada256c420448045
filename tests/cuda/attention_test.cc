// RoPE + KV-cache write, decode (flash-decoding) attention, the two fused (cluster and split
// kernels), and prefill (cuBLAS, and the fused flash kernel for head_dim 128) attention against
// float64 CPU references: 32 heads of 128 with contexts up to 4096, and the fixture's
// grouped-query shape (8 heads, 4 KV heads, head_dim 8).
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/flash_prefill.h"
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

// Also: the fp16-input overload (prefill_half_outputs) writes the same bits from the same
// (fp16-representable) values, in both kernels (300 rows: the grid-stride one; 4: per row).
TEST(RopeTest, RotatesHalvesAndWritesCache) {
  SKIP_WITHOUT_CUDA();
  // 300 rows of the 7B shape: more (row, pair) items than one pass of the kernel's grid.
  for (const auto& [s, rows] : std::vector<std::pair<Shape, int>>{{Shape{32, 32, 128, 4096, 2}, 300},
                                                                   {Shape{8, 4, 8, 512, 3}, 4}}) {
    const int n = (s.H + 2 * s.KVH) * s.hd;
    const std::vector<float> qkv = RoundToHalf(RandomFloats(static_cast<size_t>(rows) * n, -2.f, 2.f));
    std::uniform_int_distribution<int> sd(0, s.slots - 1);
    std::vector<int> all(s.max_ctx);  // distinct positions, the last one among them
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end() - 1, Rng());
    std::vector<int32_t> pos(rows), slot(rows);
    for (int r = 0; r < rows; ++r) {
      pos[r] = r == 0 ? s.max_ctx - 1 : all[r];
      slot[r] = sd(Rng());
    }
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
    {
      DeviceBuffer<__half> dqkv16(ToHalf(qkv)), q16(q.size()), kc16(cache), vc16(cache);
      ASSERT_EQ(cudaMemcpy(kc16.get(), kc.get(), cache * 2, cudaMemcpyDeviceToDevice), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(vc16.get(), vc.get(), cache * 2, cudaMemcpyDeviceToDevice), cudaSuccess);
      ASSERT_EQ(kernels::LaunchRopeStoreKv(dqkv16.get(), n, dslot.get(), dpos.get(), table.get(), rs, q16.get(),
                                           kc16.get(), vc16.get(), rows, nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      auto same_bits = [](const DeviceBuffer<__half>& a, const DeviceBuffer<__half>& b) {  // NaN poison too
        const auto ha = a.Download(), hb = b.Download();
        return std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(__half)) == 0;
      };
      EXPECT_TRUE(same_bits(q16, q) && same_bits(kc16, kc) && same_bits(vc16, vc)) << "fp16 input, rows " << rows;
    }
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

// What both fused decode-attention tests start from: a cache of shape s, four rows in distinct
// slots, random q|k|v, the RoPE table.
struct FusedStepInputs {
  const Shape s;
  const CacheData c;
  const int n;
  const std::vector<int32_t> slot = {2, 0, 3, 1};
  const int rows = static_cast<int>(slot.size());
  DeviceBuffer<float> dqkv;
  DeviceBuffer<int32_t> dslot;
  DeviceBuffer<float2> table;
  const kernels::AttnShape as;
  const kernels::RopeShape rs;
  explicit FusedStepInputs(const Shape& shape)
      : s(shape), c(shape), n((shape.H + 2 * shape.KVH) * shape.hd),
        dqkv(RandomFloats(static_cast<size_t>(rows) * n, -2.f, 2.f)), dslot(slot),
        table(static_cast<size_t>(shape.max_ctx) * shape.hd / 2), as{shape.H, shape.KVH, shape.hd, shape.max_ctx},
        rs{shape.H, shape.KVH, shape.hd, shape.max_ctx} {
    EXPECT_EQ(kernels::LaunchRopeTable(table.get(), s.max_ctx, s.hd, 10000.f, nullptr), cudaSuccess);
  }
};

// One layout's buffers (rows at positions `pos`, `splits` partials per head): the RoPE kernel
// already run on one copy of the cache (q, k_ref, v_ref; the test runs the reference attention
// into want_out), another copy (k, v) and got_out for the fused kernel, and two spans of ones
// (zero_a: `zero_count` floats, zero_b: 77) the fused kernel must clear.
struct FusedStepBuffers {
  DeviceBuffer<int32_t> dpos;
  DeviceBuffer<float2> ml;
  DeviceBuffer<float> acc;
  DeviceBuffer<uint32_t> arrivals;
  DeviceBuffer<__half> k_ref, v_ref, q, want_out, got_out, k, v;
  DeviceBuffer<float> zero_a, zero_b;
  kernels::ZeroSpans zero;
  FusedStepBuffers(const FusedStepInputs& in, const std::vector<int32_t>& pos, int splits, size_t zero_count)
      : dpos(pos), ml(static_cast<size_t>(in.rows) * in.s.H * splits),
        acc(static_cast<size_t>(in.rows) * in.s.H * splits * in.s.hd), arrivals(static_cast<size_t>(in.rows) * in.s.H),
        k_ref(ToHalf(in.c.k)), v_ref(ToHalf(in.c.v)), q(static_cast<size_t>(in.rows) * in.s.H * in.s.hd),
        want_out(q.size()), got_out(q.size()), k(ToHalf(in.c.k)), v(ToHalf(in.c.v)),
        zero_a(std::vector<float>(zero_count, 1.f)), zero_b(std::vector<float>(77, 1.f)) {
    arrivals.Zero();
    zero.p[0] = zero_a.get();
    zero.n[0] = zero_count;
    zero.p[1] = zero_b.get();
    zero.n[1] = 77;
    EXPECT_EQ(kernels::LaunchRopeStoreKv(in.dqkv.get(), in.n, in.dslot.get(), dpos.get(), in.table.get(), in.rs,
                                         q.get(), k_ref.get(), v_ref.get(), in.rows, nullptr), cudaSuccess);
  }
};

// A random permutation of 0..n-1 (the out_perm of the fused kernels) and the check that `got`
// holds `first` scattered by it, row by row of n: got[r * n + perm[j]] == first[r * n + j].
std::vector<int32_t> RandomPermutation(int n) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = i;
  std::mt19937 rng(n);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}
void ExpectScattered(const std::vector<float>& first, const std::vector<float>& got, const std::vector<int32_t>& perm) {
  const size_t n = perm.size();
  ASSERT_EQ(first.size(), got.size());
  for (size_t r = 0; r < first.size() / n; ++r)
    for (size_t j = 0; j < n; ++j)
      ASSERT_EQ(got[r * n + perm[j]], first[r * n + j]) << "row " << r << " dim " << j;
}

// After a fused decode-attention kernel (RoPE, K/V write and attention in one) ran on b.k, b.v
// into b.got_out: the zero spans are cleared, the caches equal what the RoPE kernel wrote into
// b.k_ref, b.v_ref, and every row's output is within 2e-3 of RoPE then decode attention
// (b.want_out, from the rotated q) and 3e-3 of the float64 reference over the rotated q and the
// written cache.
void ExpectLikeRopeThenAttention(const FusedStepInputs& in, const std::vector<int32_t>& pos, int splits,
                                 int split_keys, const FusedStepBuffers& b) {
  const Shape& s = in.s;
  for (float z : b.zero_a.Download()) ASSERT_EQ(z, 0.f);
  for (float z : b.zero_b.Download()) ASSERT_EQ(z, 0.f);
  const auto hk = FromHalf(b.k.Download()), hv = FromHalf(b.v.Download());
  ASSERT_TRUE(hk == FromHalf(b.k_ref.Download())) << "K cache differs from the RoPE kernel's";
  ASSERT_TRUE(hv == FromHalf(b.v_ref.Download())) << "V cache differs from the RoPE kernel's";
  const auto hq = FromHalf(b.q.Download()), want = FromHalf(b.want_out.Download()), got = FromHalf(b.got_out.Download());
  for (size_t r = 0; r < in.slot.size(); ++r) {
    const size_t off = r * s.H * s.hd, len = static_cast<size_t>(s.H) * s.hd;
    const std::vector<float> qr(hq.begin() + off, hq.begin() + off + len);
    const std::vector<float> gr(got.begin() + off, got.begin() + off + len);
    const std::vector<double> wr(want.begin() + off, want.begin() + off + len);
    const std::string what = "hd=" + std::to_string(s.hd) + " keys=" + std::to_string(pos[r] + 1) +
                             " splits=" + std::to_string(splits) + " x " + std::to_string(split_keys);
    EXPECT_LT(RelError(gr, wr), 2e-3) << what << " vs RoPE + decode attention";
    EXPECT_LT(RelError(gr, RefAttention(s, qr, hk, hv, in.slot[r], pos[r] + 1)), 3e-3) << what << " vs reference";
  }
}

// The fused decode step (RoPE + K/V write + attention, one cluster of split blocks per head)
// against RoPE then decode attention (same cache writes, same output up to summation order)
// and against the float64 reference over the rotated q and the written cache; rows are
// distinct slots, the new key alone in its split or last of one, clusters of 1 to 16 blocks
// (3: not a power of two), splits past a row's keys.
TEST(RopeDecodeAttentionTest, MatchesRopeThenAttentionAndReference) {
  SKIP_WITHOUT_CUDA();
  for (const Shape s : {Shape{32, 32, 128, 2048, 4}, Shape{8, 4, 8, 512, 4}}) {
    const FusedStepInputs in(s);
    for (const auto& [split_keys, splits] :
         std::vector<std::pair<int, int>>{{32, 16}, {64, 16}, {32, 3}, {128, 8}, {64, 1}}) {
      const std::vector<int32_t> pos = {0, 31, 32, std::min(split_keys * splits, s.max_ctx) - 1};
      FusedStepBuffers b(in, pos, splits, 1000);
      // Unfused: RoPE kernel (above), then decode attention, on one copy of the cache.
      ASSERT_EQ(kernels::LaunchDecodeAttention(b.q.get(), b.k_ref.get(), b.v_ref.get(), in.dslot.get(), b.dpos.get(),
                                               in.as, in.rows, splits, split_keys, b.ml.get(), b.acc.get(), nullptr,
                                               nullptr, 0, b.want_out.get(), b.arrivals.get()), cudaSuccess);
      // Fused on another copy: positions read after the PDL wait, then before it (q and the
      // new key then loaded before the zeroing), same bits.
      std::vector<float> first;
      for (const bool positions_final : {false, true}) {
        b.got_out.Zero();
        b.zero_a.Upload(std::vector<float>(b.zero_a.size(), 1.f));  // each launch must clear them
        b.zero_b.Upload(std::vector<float>(77, 1.f));
        ASSERT_EQ(kernels::LaunchRopeDecodeAttention(in.dqkv.get(), in.n, in.table.get(), b.k.get(), b.v.get(),
                                                     in.dslot.get(), b.dpos.get(), in.as, in.rows, splits,
                                                     split_keys, positions_final, b.got_out.get(), nullptr, b.zero),
                  cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        for (float z : b.zero_a.Download()) ASSERT_EQ(z, 0.f) << "positions_final " << positions_final;
        for (float z : b.zero_b.Download()) ASSERT_EQ(z, 0.f) << "positions_final " << positions_final;
        if (first.empty()) first = FromHalf(b.got_out.Download());
        ASSERT_TRUE(first == FromHalf(b.got_out.Download()))
            << "positions_final " << positions_final << " changed the result";
      }
      ExpectLikeRopeThenAttention(in, pos, splits, split_keys, b);
      // With out_perm: the same values, each (head, dim) where the permutation puts it. The
      // kernel ran once already, so the cache holds the new keys: the same step again.
      const auto perm = RandomPermutation(s.H * s.hd);
      DeviceBuffer<int32_t> dperm(perm);
      b.got_out.Zero();
      ASSERT_EQ(kernels::LaunchRopeDecodeAttention(in.dqkv.get(), in.n, in.table.get(), b.k.get(), b.v.get(),
                                                   in.dslot.get(), b.dpos.get(), in.as, in.rows, splits, split_keys,
                                                   true, b.got_out.get(), nullptr, b.zero, dperm.get()),
                cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ExpectScattered(first, FromHalf(b.got_out.Download()), perm);
    }
    // Too many splits for one cluster: refused.
    DeviceBuffer<__half> out(static_cast<size_t>(in.rows) * s.H * s.hd);
    DeviceBuffer<int32_t> dpos(std::vector<int32_t>(in.rows, 0));
    DeviceBuffer<__half> k(ToHalf(in.c.k)), v(ToHalf(in.c.v));
    EXPECT_EQ(kernels::LaunchRopeDecodeAttention(in.dqkv.get(), in.n, in.table.get(), k.get(), v.get(), in.dslot.get(),
                                                 dpos.get(), in.as, in.rows, kernels::kRopeAttnMaxSplits + 1, 32, true,
                                                 out.get(), nullptr),
              cudaErrorInvalidValue);
  }
}

// The same step for long contexts (kernels::LaunchRopeSplitAttention: K/V rows in registers,
// splits merged through global memory by the last block of each head) against RoPE then
// decode attention and the float64 reference: up to 2304 keys (36 splits of 64), splits of
// several tiles, splits past a row's keys, the new key alone in its split or last of one; cache writes identical to the
// RoPE kernel's; the arrival counters left at zero.
TEST(RopeSplitAttentionTest, MatchesRopeThenAttentionAndReference) {
  SKIP_WITHOUT_CUDA();
  for (const Shape s : {Shape{32, 32, 128, 2304, 4}, Shape{8, 4, 8, 512, 4}}) {
    const FusedStepInputs in(s);
    // Splits of several tiles (a tile is 8 rows per thread: 64 keys at hd 128, 1024 at hd 8),
    // the last one partial.
    std::vector<std::pair<int, int>> layouts = {{64, 36}, {64, 40}, {32, 16}, {64, 3}, {64, 1}, {192, 12}, {136, 17}};
    if (s.hd == 8) layouts.push_back({300, 2});
    for (const auto& [split_keys, splits] : layouts) {
      const int keys = std::min(split_keys * splits, s.max_ctx);
      const std::vector<int32_t> pos = {0, std::min(63, keys - 1), std::min(1000, keys - 2), keys - 1};
      FusedStepBuffers b(in, pos, splits, 5000);
      const int ref_splits = (s.max_ctx + 63) / 64;  // the split kernel takes at most 128 keys per split
      DeviceBuffer<float2> ref_ml(static_cast<size_t>(in.rows) * s.H * ref_splits);
      DeviceBuffer<float> ref_acc(static_cast<size_t>(in.rows) * s.H * ref_splits * s.hd);
      ASSERT_EQ(kernels::LaunchDecodeAttention(b.q.get(), b.k_ref.get(), b.v_ref.get(), in.dslot.get(), b.dpos.get(),
                                               in.as, in.rows, ref_splits, 64, ref_ml.get(), ref_acc.get(), nullptr,
                                               nullptr, 0, b.want_out.get(), b.arrivals.get()), cudaSuccess);
      // Merged through global memory, then (up to 16 splits) in a thread-block cluster: the
      // same bits; positions read after the PDL wait, then before it.
      std::vector<float> first;
      for (const bool cluster : {false, true}) {
        if (cluster && splits > kernels::kRopeAttnMaxSplits) continue;
        for (const bool positions_final : {false, true}) {
          b.got_out.Zero();
          ASSERT_EQ(kernels::LaunchRopeSplitAttention(in.dqkv.get(), in.n, in.table.get(), b.k.get(), b.v.get(),
                                                      in.dslot.get(), b.dpos.get(), in.as, in.rows, splits, split_keys,
                                                      positions_final, b.ml.get(), b.acc.get(), b.got_out.get(),
                                                      b.arrivals.get(), nullptr, b.zero, cluster),
                    cudaSuccess);
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          if (first.empty()) first = FromHalf(b.got_out.Download());
          ASSERT_TRUE(first == FromHalf(b.got_out.Download()))
              << "cluster " << cluster << ", positions_final " << positions_final << " changed the result";
        }
        // The clocked variant (SetAttentionClock, diagnosis): the same bits, and split 0 of
        // head 0 (row 0) records its 11 points in order and the launch's splits.
        kernels::SetAttentionClock(true);
        b.got_out.Zero();
        const cudaError_t clocked = kernels::LaunchRopeSplitAttention(
            in.dqkv.get(), in.n, in.table.get(), b.k.get(), b.v.get(), in.dslot.get(), b.dpos.get(), in.as, in.rows,
            splits, split_keys, true, b.ml.get(), b.acc.get(), b.got_out.get(), b.arrivals.get(), nullptr, b.zero,
            cluster);
        kernels::SetAttentionClock(false);
        ASSERT_EQ(clocked, cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        ASSERT_TRUE(first == FromHalf(b.got_out.Download())) << "cluster " << cluster << ": the clock changed the result";
        ASSERT_EQ(kernels::AttentionClockKernel(), 2);
        const std::vector<uint64_t> t = kernels::ReadAttentionClock();
        ASSERT_GE(t.size(), static_cast<size_t>(kernels::kAttnClockSlots));
        for (int i = 1; i <= 10; ++i) EXPECT_LE(t[i - 1], t[i]) << "cluster " << cluster << ", point " << i;
        EXPECT_LE(t[13], t[11]);  // %globaltimer: entry, after the wait, end
        EXPECT_LE(t[11], t[12]);
        EXPECT_EQ(t[14], static_cast<uint64_t>(splits));
      }
      for (uint32_t a : b.arrivals.Download()) ASSERT_EQ(a, 0u);
      ExpectLikeRopeThenAttention(in, pos, splits, split_keys, b);
      if (splits > kernels::kRopeAttnMaxSplits) continue;
      // The cluster merge with out_perm (after the checks above, which read got_out): the
      // same values, scattered by the permutation.
      const auto perm = RandomPermutation(s.H * s.hd);
      DeviceBuffer<int32_t> dperm(perm);
      b.got_out.Zero();
      ASSERT_EQ(kernels::LaunchRopeSplitAttention(in.dqkv.get(), in.n, in.table.get(), b.k.get(), b.v.get(),
                                                  in.dslot.get(), b.dpos.get(), in.as, in.rows, splits, split_keys, true,
                                                  b.ml.get(), b.acc.get(), b.got_out.get(), b.arrivals.get(), nullptr,
                                                  b.zero, true, dperm.get()),
                cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ExpectScattered(first, FromHalf(b.got_out.Download()), perm);
    }
    // No keys per split, or a cluster of more than 16 splits: refused.
    DeviceBuffer<float2> ml(static_cast<size_t>(in.rows) * s.H);
    DeviceBuffer<float> acc(static_cast<size_t>(in.rows) * s.H * s.hd);
    DeviceBuffer<uint32_t> arrivals(static_cast<size_t>(in.rows) * s.H);
    DeviceBuffer<__half> k(ToHalf(in.c.k)), v(ToHalf(in.c.v)), out(static_cast<size_t>(in.rows) * s.H * s.hd);
    DeviceBuffer<int32_t> dpos(std::vector<int32_t>(in.rows, 0));
    EXPECT_EQ(kernels::LaunchRopeSplitAttention(in.dqkv.get(), in.n, in.table.get(), k.get(), v.get(), in.dslot.get(),
                                                dpos.get(), in.as, in.rows, 1, 0, true, ml.get(), acc.get(), out.get(),
                                                arrivals.get(), nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(kernels::LaunchRopeSplitAttention(in.dqkv.get(), in.n, in.table.get(), k.get(), v.get(), in.dslot.get(),
                                                dpos.get(), in.as, in.rows, kernels::kRopeAttnMaxSplits + 1, 64, true,
                                                nullptr, nullptr, out.get(), nullptr, nullptr, {}, true),
              cudaErrorInvalidValue);
    // out_perm only with the cluster merge.
    DeviceBuffer<int32_t> dperm(RandomPermutation(s.H * s.hd));
    EXPECT_EQ(kernels::LaunchRopeSplitAttention(in.dqkv.get(), in.n, in.table.get(), k.get(), v.get(), in.dslot.get(),
                                                dpos.get(), in.as, in.rows, 1, 64, true, ml.get(), acc.get(), out.get(),
                                                arrivals.get(), nullptr, {}, false, dperm.get()),
              cudaErrorInvalidValue);
  }
}

TEST(PrefillAttentionTest, CausalMatchesReference) {
  SKIP_WITHOUT_CUDA();
  // The third shape's rows have more keys (> 6144) than the softmax caches in shared memory.
  for (const auto& [s, start] : std::vector<std::pair<Shape, int>>{
           {Shape{32, 32, 128, 1024, 2}, 100}, {Shape{8, 4, 8, 512, 3}, 100}, {Shape{2, 1, 8, 24800, 2}, 24500}}) {
    CacheData c(s);
    const int slot = 1, T = 300, q_block = 128;
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

// The fused flash prefill (head_dim 128) against the float64 reference on sampled rows (first,
// last, either side of the 64- and 128-row block boundaries) and against the cuBLAS path on every
// element: T not a multiple of the block, grouped-query heads, a chunk deep in the cache whose
// diagonal straddles two key tiles, a block-aligned diagonal, single rows; the last two cases have
// enough query blocks (> 2 per SM) for the 128-row kernel, the others take the 64-row one. `out`
// has guard rows past T that must keep their poison (NaN).
TEST(FlashPrefillAttentionTest, CausalMatchesReference) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    Shape s;
    int start, T;
  };
  for (const Case& tc : std::vector<Case>{{Shape{32, 32, 128, 1024, 2}, 100, 300},
                                          {Shape{8, 2, 128, 2048, 2}, 0, 1000},
                                          {Shape{4, 4, 128, 4096, 2}, 3000, 77},
                                          {Shape{2, 1, 128, 1024, 2}, 64, 128},
                                          {Shape{4, 2, 128, 512, 2}, 0, 1},
                                          {Shape{4, 2, 128, 512, 2}, 200, 1},
                                          {Shape{32, 8, 128, 2048, 2}, 100, 1900},
                                          {Shape{32, 32, 128, 2048, 2}, 0, 2048}}) {
    const Shape& s = tc.s;
    const int slot = 1, T = tc.T, guard = 64, q_block = 128;
    const std::string what = "H=" + std::to_string(s.H) + " KVH=" + std::to_string(s.KVH) +
                             " start=" + std::to_string(tc.start) + " T=" + std::to_string(T);
    CacheData c(s);
    const size_t row = static_cast<size_t>(s.H) * s.hd;
    const std::vector<float> q = RoundToHalf(RandomFloats(T * row, -3.f, 3.f));
    DeviceBuffer<__half> dq(ToHalf(q)), out((T + guard) * row), want_out(T * row);
    const kernels::AttnShape as{s.H, s.KVH, s.hd, s.max_ctx};
    ASSERT_TRUE(kernels::FlashPrefillFits(as)) << what;
    ASSERT_EQ(kernels::LaunchFlashPrefillAttention(dq.get(), c.dk.get(), c.dv.get(), slot, tc.start, T, as,
                                                   out.get(), nullptr), cudaSuccess) << what;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    DeviceBuffer<char> scratch(kernels::PrefillAttentionScratchBytes(as, q_block));
    cublasHandle_t blas;
    ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(kernels::LaunchPrefillAttention(blas, dq.get(), c.dk.get(), c.dv.get(), slot, tc.start, T, as, q_block,
                                              scratch.get(), want_out.get(), nullptr), cudaSuccess) << what;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    cublasDestroy(blas);
    const auto all = FromHalf(out.Download());
    for (size_t i = T * row; i < all.size(); ++i) ASSERT_TRUE(std::isnan(all[i])) << what << ": wrote past row T";
    const std::vector<float> got(all.begin(), all.begin() + T * row);
    const auto cublas_out = FromHalf(want_out.Download());
    EXPECT_LT(RelError(got, std::vector<double>(cublas_out.begin(), cublas_out.end())), 2e-3) << what << " vs cuBLAS";
    for (int t : {0, 1, 15, 16, 63, 64, 65, 127, 128, T / 2, T - 2, T - 1}) {
      if (t < 0 || t >= T) continue;
      const std::vector<float> qr(q.begin() + t * row, q.begin() + (t + 1) * row);
      const std::vector<float> gr(got.begin() + t * row, got.begin() + (t + 1) * row);
      EXPECT_LT(RelError(gr, RefAttention(s, qr, c.k, c.v, slot, tc.start + t + 1)), 3e-3) << what << " row " << t;
    }
  }
}

// Head dims other than 128 (the fixture's 8) are refused before any launch: out keeps its poison.
TEST(FlashPrefillAttentionTest, RefusesOtherHeadDims) {
  SKIP_WITHOUT_CUDA();
  EXPECT_TRUE(kernels::FlashPrefillFits(kernels::AttnShape{32, 32, 128, 4096}));
  for (const Shape s : {Shape{8, 4, 8, 512, 3}, Shape{4, 4, 64, 512, 1}}) {
    const kernels::AttnShape as{s.H, s.KVH, s.hd, s.max_ctx};
    EXPECT_FALSE(kernels::FlashPrefillFits(as)) << "hd=" << s.hd;
    const CacheData c(s);
    const int T = 5;
    DeviceBuffer<__half> q(ToHalf(RandomFloats(static_cast<size_t>(T) * s.H * s.hd))), out(q.size());
    EXPECT_EQ(kernels::LaunchFlashPrefillAttention(q.get(), c.dk.get(), c.dv.get(), 0, 10, T, as, out.get(), nullptr),
              cudaErrorNotSupported) << "hd=" << s.hd;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (float x : FromHalf(out.Download())) ASSERT_TRUE(std::isnan(x)) << "hd=" << s.hd << ": out was written";
  }
}

}  // namespace
}  // namespace llama::testing
