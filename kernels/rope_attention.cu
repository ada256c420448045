// One decode step's attention in one kernel: RoPE of the query and the new key, the K/V-cache
// write of the new position, and flash-decoding over the cached keys (kernels/attention.h,
// LaunchRopeDecodeAttention). Replaces LaunchRopeStoreKv + LaunchDecodeAttention when every
// row is its own sequence.
#include <cfloat>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/cluster_merge.cuh"
#include "kernels/launch.h"
#include "kernels/rope_attention_split.cuh"

namespace llama::kernels {
namespace {

using namespace rope_attn;

// Bytes of a block's K/V rows, scores, P.V sums and partial acc, 16-byte aligned: where the
// cluster merge's scratch starts.
__host__ __device__ constexpr size_t PartialBytes(int hd, int split_keys) {
  return (static_cast<size_t>(split_keys) * hd * 2 * sizeof(__half) + split_keys * sizeof(float) +
          static_cast<size_t>(kWarps + 1) * hd * sizeof(float) + 15) & ~static_cast<size_t>(15);
}

// grid (splits, H, rows), one cluster of `splits` blocks per (row, head), kThreads threads.
// Dynamic shared memory: the split's K and V rows [split_keys][hd] fp16, its scores
// [split_keys], the warps' P.V sums [kWarps][hd], the block's partial acc [hd], then, 16-byte
// aligned, the cluster merge's receiving end (ClusterMergeScratch).
// kClock (diagnosis, SetAttentionClock): every block (split, h < kAttnClockHeads, row 0)
// records into g_attn_clock[h][split] (attention.h says what).
__device__ unsigned long long g_attn_clock[kAttnClockHeads][kRopeAttnMaxSplits][kAttnClockSlots];

template <bool kClock>
__global__ void __launch_bounds__(kThreads) RopeDecodeAttentionKernel(
    const float* __restrict__ qkv, int ld_qkv, const float2* __restrict__ table, __half* __restrict__ k_cache,
    __half* __restrict__ v_cache, const int32_t* __restrict__ slots, const int32_t* __restrict__ positions,
    AttnShape s, int split_keys, bool positions_final, __half* __restrict__ out, ZeroSpans zero,
    const int32_t* __restrict__ out_perm) {
  AllowDependents();
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float2 s_ml;
  const int split = blockIdx.x, h = blockIdx.y, m = blockIdx.z;
  unsigned long long* clk = kClock && m == 0 && h < kAttnClockHeads ? g_attn_clock[h][split] : nullptr;
  ClockMark(clk, 0);
  TimerMark(clk, 13);
  const int hd = s.head_dim, S = split_keys, k0 = split * S;
  const int kvh = h / (s.heads / s.kv_heads);
  const size_t row_stride = static_cast<size_t>(s.kv_heads) * hd;
  __half* ks = reinterpret_cast<__half*>(smem);
  __half* vs = ks + S * hd;
  float* p = reinterpret_cast<float*>(vs + S * hd);
  float* wacc = p + S;
  float* s_acc = wacc + kWarps * hd;
  const ClusterMergeScratch cm = ClusterMergeAt(smem + PartialBytes(hd, S), gridDim.x);
  ClusterMergeBegin(cm, hd);

  // The cached keys (positions before pos[m]) were written by earlier launches. When the
  // positions are final before this kernel starts (a replayed graph: the host and the last
  // graph wrote them), they are copied into shared memory before the wait, and the RoPE
  // angles of the position are loaded then too; otherwise an earlier kernel may still be
  // writing them, so the rows they point at are only prefetched into L2 (a hint: a stale
  // value costs bandwidth, never correctness) and everything is read after it.
  const int d0 = (threadIdx.x % (hd / 8)) * 8;
  float2 cs[8];
  int pos = positions[m];
  // out_perm: where this thread's dim of the head goes in the row (immutable: read early).
  const int perm_dst = out_perm != nullptr && threadIdx.x < hd ? __ldg(out_perm + h * hd + threadIdx.x) : 0;
  {
    const int nold = min(S, pos - k0);
    const size_t base = static_cast<size_t>(slots[m]) * s.max_ctx * row_stride + static_cast<size_t>(kvh) * hd;
    if (positions_final) {
      CopyCachedRows(k_cache, v_cache, base, row_stride, k0, max(nold, 0), hd, ks, vs);
      if (k0 <= pos) RopeAngles(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
    } else {
      for (int r = threadIdx.x; r < 2 * nold; r += kThreads) {
        const __half* cache = r < nold ? k_cache : v_cache;
        PrefetchL2(cache + base + static_cast<size_t>(k0 + r % nold) * row_stride, hd * 2);
      }
    }
  }
  ClockMark(clk, 1);
  WaitForPrerequisites();
  ClockMark(clk, 2);
  TimerMark(clk, 11);
  // q and the new key are loaded first; with positions read after the wait, once the
  // position is known.
  const float* row = qkv + static_cast<size_t>(m) * ld_qkv;
  SplitRowLoads loads;
  if (positions_final && k0 <= pos) LoadSplitRow(row, s, h, kvh, pos < k0 + S, &loads);
  ClockMark(clk, 3);

  if (!positions_final) pos = positions[m];
  if (k0 <= pos) {
    const int nk = min(S, pos + 1 - k0), nold = min(nk, pos - k0);
    const size_t base = static_cast<size_t>(slots[m]) * s.max_ctx * row_stride + static_cast<size_t>(kvh) * hd;
    if (!positions_final) {
      CopyCachedRows(k_cache, v_cache, base, row_stride, k0, nold, hd, ks, vs);
      RopeAngles(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
    }
    if (!positions_final) LoadSplitRow(row, s, h, kvh, nold < nk, &loads);
    SplitAttention(loads, cs, k_cache, v_cache, base + static_cast<size_t>(pos) * row_stride, s, h, nk, nold, ks, vs, p,
                   wacc, s_acc, &s_ml, clk);
  } else if (threadIdx.x == 0) {
    s_ml = make_float2(-FLT_MAX, 0.f);  // past this row's keys: an empty split
  }

  ClockMark(clk, 9);
  // The other blocks push their partials to the cluster's first, which merges them.
  MergeClusterSplits(&s_ml, s_acc, hd, out + (static_cast<size_t>(m) * s.heads + h) * hd, cm, clk,
                     out_perm != nullptr ? out + static_cast<size_t>(m) * s.heads * hd : nullptr, perm_dst);
  ClockMark(clk, 10);
  // The grid's zeroing, off the path to the merge (with rank 0's merge loads issued at once,
  // decode +1.7% on `main`, session 21).
  ZeroByPushedRanks(zero, split, h, m);
  TimerMark(clk, 12);
  if (clk && threadIdx.x == 0) {
    clk[14] = gridDim.x;
    clk[15] = k0 <= pos && pos < k0 + S;  // this split holds the new key
  }
}

bool g_clock_on = false;
int g_clocked_kernel = 0;  // AttentionClockKernel

}  // namespace

size_t RopeDecodeAttentionSmemBytes(int head_dim, int split_keys, int splits) {
  return PartialBytes(head_dim, split_keys) + ClusterMergeBytes(splits, head_dim);
}

cudaError_t LaunchRopeDecodeAttention(const float* qkv, int ld_qkv, const float2* rope_table, __half* k_cache,
                                      __half* v_cache, const int32_t* slot, const int32_t* pos,
                                      const AttnShape& shape, int rows, int splits, int split_keys,
                                      bool positions_final, __half* out, cudaStream_t stream, ZeroSpans zero,
                                      const int32_t* out_perm) {
  if (rows <= 0) return cudaSuccess;
  const int tpr = shape.head_dim / 8;
  if ((out_perm != nullptr && shape.head_dim > kThreads) || split_keys < 1 || split_keys > kAttnSplitKeys ||
      splits < 1 || splits > kRopeAttnMaxSplits ||
      shape.head_dim % 8 != 0 || (tpr & (tpr - 1)) != 0 || tpr > 32 ||
      shape.heads % shape.kv_heads != 0)
    return cudaErrorInvalidValue;
  // Once per process and instantiation: 16-block clusters are non-portable; the most shared memory.
  auto attrs = [](auto kernel) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(RopeDecodeAttentionSmemBytes(256, kAttnSplitKeys, kRopeAttnMaxSplits)));
    return e;
  };
  static const cudaError_t plain = attrs(RopeDecodeAttentionKernel<false>);
  static const cudaError_t clocked = attrs(RopeDecodeAttentionKernel<true>);
  if (plain != cudaSuccess || clocked != cudaSuccess) return plain != cudaSuccess ? plain : clocked;
  if (g_clock_on) g_clocked_kernel = 1;
  return LaunchClusters(g_clock_on ? RopeDecodeAttentionKernel<true> : RopeDecodeAttentionKernel<false>,
                        dim3(splits, shape.heads, rows), dim3(kThreads),
                        RopeDecodeAttentionSmemBytes(shape.head_dim, split_keys, splits), stream, splits, qkv, ld_qkv,
                        rope_table, k_cache, v_cache, slot, pos, shape, split_keys, positions_final, out, zero,
                        out_perm);
}

void SetAttentionClock(bool on) { g_clock_on = on; }
bool AttentionClockOn() { return g_clock_on; }
void NoteClockedSplitLaunch() { g_clocked_kernel = 2; }
int AttentionClockKernel() { return g_clocked_kernel; }

std::vector<uint64_t> ReadAttentionClock() {
  return g_clocked_kernel == 2 ? ReadSplitAttentionClock() : ReadClockBuffer(g_attn_clock);
}

}  // namespace llama::kernels
