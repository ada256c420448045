// One decode step's attention in one kernel: RoPE of the query and the new key, the K/V-cache
// write of the new position, and flash-decoding over the cached keys (kernels/attention.h,
// LaunchRopeDecodeAttention). Replaces LaunchRopeStoreKv + LaunchDecodeAttention when every
// row is its own sequence.
#include <cfloat>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/cluster_merge.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

__device__ __forceinline__ void PrefetchL2(const void* p, unsigned bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

// Issues the copies of the split's cached keys and values (rows k0 .. k0 + nold - 1) into
// shared memory; returns nold.
__device__ __forceinline__ int CopyCachedRows(const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
                                              size_t base, size_t row_stride, int k0, int nold, int hd, __half* ks,
                                              __half* vs) {
  const int chunks = hd / 8;
  for (int c = threadIdx.x; c < nold * chunks; c += kThreads) {
    const int r = c / chunks, d = (c % chunks) * 8;
    const size_t g = base + static_cast<size_t>(k0 + r) * row_stride + d;
    CpAsync16(ks + r * hd + d, k_cache + g);
    CpAsync16(vs + r * hd + d, v_cache + g);
  }
  return nold;
}

// The block's split of keys [k0, k0 + nk) of (row m, head h) at position pos, the new key
// last when nold < nk (cs: the RoPE angles of the thread's 8 dims at pos): rotates q (and
// the new key, which it stores in shared memory and, for one q head per kv head, in the
// cache), then leaves the unnormalized P.V in s_acc[hd] and (max, sum) in *s_ml. The cached
// rows are in flight to ks / vs (cp.async).
__device__ __forceinline__ void SplitAttention(const float* __restrict__ row, const float2 (&cs)[8],
                                               __half* __restrict__ k_cache, __half* __restrict__ v_cache,
                                               size_t new_at, const AttnShape& s, int h, int kvh, int nk, int nold,
                                               __half* ks, __half* vs, float* p, float* wacc, float* s_acc,
                                               float2* s_ml) {
  const int hd = s.head_dim;
  // tpr = hd / 8 threads cover one row with 8 dims each; par rows per pass.
  const int tpr = hd / 8, par = kThreads / tpr;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  float qf[8];
  RopeEightWith(row + h * hd, d0, hd, cs, qf);
  const float scale = rsqrtf(static_cast<float>(hd));
#pragma unroll
  for (int j = 0; j < 8; ++j) qf[j] *= scale;
  if (nold < nk && r0 == 0) {  // this split holds the new key: rotate it, store it
    float kf[8], vf[8];
    RopeEightWith(row + (s.heads + kvh) * hd, d0, hd, cs, kf);
    const float* v = row + (s.heads + s.kv_heads + kvh) * hd + d0;
#pragma unroll
    for (int j = 0; j < 8; ++j) vf[j] = v[j];
    StoreEight(ks + nold * hd + d0, kf);
    StoreEight(vs + nold * hd + d0, vf);
    if (h % (s.heads / s.kv_heads) == 0) {  // one block per kv head writes the cache
      StoreEight(k_cache + new_at + d0, kf);
      StoreEight(v_cache + new_at + d0, vf);
    }
  }
  CpAsyncWaitAll();
  __syncthreads();

  // Scores q.k / sqrt(hd) of the split's keys.
  for (int rb = 0; rb < nk; rb += par) {
    const int r = rb + r0;
    float dot = r < nk ? DotEight(qf, ks + r * hd + d0) : 0.f;
    for (int o = tpr / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (r < nk && d0 == 0) p[r] = dot;
  }
  __syncthreads();

  // Softmax statistics, computed by every warp (no block reduction).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float mx = -FLT_MAX;
  for (int j = lane; j < nk; j += 32) mx = fmaxf(mx, p[j]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
  for (int j = lane; j < nk; j += 32) sum += __expf(p[j] - mx);
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);

  // P.V: thread (r0, d0) sums rows r0, r0 + par, ...; then the row groups of a warp, then the warps.
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int r = r0; r < nk; r += par) AxpyEight(__expf(p[r] - mx), vs + r * hd + d0, acc);
  for (int o = tpr; o < 32; o <<= 1)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
  if (lane < tpr)
#pragma unroll
    for (int j = 0; j < 8; ++j) wacc[warp * hd + d0 + j] = acc[j];
  __syncthreads();
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float v = 0.f;
    for (int w = 0; w < kWarps; ++w) v += wacc[w * hd + d];
    s_acc[d] = v;
  }
  if (threadIdx.x == 0) *s_ml = make_float2(mx, sum);
}

// grid (splits, H, rows), one cluster of `splits` blocks per (row, head), kThreads threads.
// Dynamic shared memory: the split's K and V rows [split_keys][hd] fp16, its scores
// [split_keys], the warps' P.V sums [kWarps][hd], the block's partial acc [hd].
__global__ void __launch_bounds__(kThreads) RopeDecodeAttentionKernel(
    const float* __restrict__ qkv, int ld_qkv, const float2* __restrict__ table, __half* __restrict__ k_cache,
    __half* __restrict__ v_cache, const int32_t* __restrict__ slots, const int32_t* __restrict__ positions,
    AttnShape s, int split_keys, bool positions_final, __half* __restrict__ out, ZeroSpans zero) {
  AllowDependents();
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float2 s_ml;
  const int split = blockIdx.x, h = blockIdx.y, m = blockIdx.z;
  const int hd = s.head_dim, S = split_keys, k0 = split * S;
  const int kvh = h / (s.heads / s.kv_heads);
  const size_t row_stride = static_cast<size_t>(s.kv_heads) * hd;
  __half* ks = reinterpret_cast<__half*>(smem);
  __half* vs = ks + S * hd;
  float* p = reinterpret_cast<float*>(vs + S * hd);
  float* wacc = p + S;
  float* s_acc = wacc + kWarps * hd;

  // The cached keys (positions before pos[m]) were written by earlier launches. When the
  // positions are final before this kernel starts (a replayed graph: the host and the last
  // graph wrote them), they are copied into shared memory before the wait, and the RoPE
  // angles of the position are loaded then too; otherwise an earlier kernel may still be
  // writing them, so the rows they point at are only prefetched into L2 (a hint: a stale
  // value costs bandwidth, never correctness) and everything is read after it.
  const int d0 = (threadIdx.x % (hd / 8)) * 8;
  float2 cs[8];
  int pos = positions[m];
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
  WaitForPrerequisites();
  ZeroByGrid(zero.p[0], zero.n[0]);
  ZeroByGrid(zero.p[1], zero.n[1]);

  if (!positions_final) pos = positions[m];
  if (k0 <= pos) {
    const int nk = min(S, pos + 1 - k0), nold = min(nk, pos - k0);
    const size_t base = static_cast<size_t>(slots[m]) * s.max_ctx * row_stride + static_cast<size_t>(kvh) * hd;
    if (!positions_final) {
      CopyCachedRows(k_cache, v_cache, base, row_stride, k0, nold, hd, ks, vs);
      RopeAngles(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
    }
    SplitAttention(qkv + static_cast<size_t>(m) * ld_qkv, cs, k_cache, v_cache,
                   base + static_cast<size_t>(pos) * row_stride, s, h, kvh, nk, nold, ks, vs, p, wacc, s_acc, &s_ml);
  } else if (threadIdx.x == 0) {
    s_ml = make_float2(-FLT_MAX, 0.f);  // past this row's keys: an empty split
  }

  // The cluster's first block merges the partials from the others' shared memory.
  MergeClusterSplits(&s_ml, s_acc, hd, out + (static_cast<size_t>(m) * s.heads + h) * hd);
}

}  // namespace

size_t RopeDecodeAttentionSmemBytes(int head_dim, int split_keys) {
  return static_cast<size_t>(split_keys) * head_dim * 2 * sizeof(__half) + split_keys * sizeof(float) +
         static_cast<size_t>(kWarps + 1) * head_dim * sizeof(float);
}

cudaError_t LaunchRopeDecodeAttention(const float* qkv, int ld_qkv, const float2* rope_table, __half* k_cache,
                                      __half* v_cache, const int32_t* slot, const int32_t* pos,
                                      const AttnShape& shape, int rows, int splits, int split_keys,
                                      bool positions_final, __half* out, cudaStream_t stream, ZeroSpans zero) {
  if (rows <= 0) return cudaSuccess;
  const int tpr = shape.head_dim / 8;
  if (split_keys < 1 || split_keys > kAttnSplitKeys || splits < 1 || splits > kRopeAttnMaxSplits ||
      shape.head_dim % 8 != 0 || (tpr & (tpr - 1)) != 0 || tpr > 32 ||
      shape.heads % shape.kv_heads != 0)
    return cudaErrorInvalidValue;
  const size_t smem = RopeDecodeAttentionSmemBytes(shape.head_dim, split_keys);
  static const cudaError_t attrs = [] {  // once per process: 16-block clusters are non-portable
    cudaError_t e = cudaFuncSetAttribute(RopeDecodeAttentionKernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute(RopeDecodeAttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(RopeDecodeAttentionSmemBytes(256, kAttnSplitKeys)));
    return e;
  }();
  if (attrs != cudaSuccess) return attrs;
  return LaunchClusters(RopeDecodeAttentionKernel, dim3(splits, shape.heads, rows), dim3(kThreads), smem, stream,
                        splits, qkv, ld_qkv, rope_table, k_cache, v_cache, slot, pos, shape, split_keys,
                        positions_final, out, zero);
}

}  // namespace llama::kernels
