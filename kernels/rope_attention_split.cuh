// The split of one (row, head) in the cluster decode-attention kernel (rope_attention.cu):
// the copies of its cached K/V rows into shared memory and its partial (RoPE of q and of the
// new key, scores, softmax statistics, P.V).
// Included by .cu files only.
#pragma once

#include <cfloat>

#include "kernels/attention_common.cuh"

namespace llama::kernels {
namespace rope_attn {

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

// What a split's block reads from its row of q|k|v after the PDL wait, loaded all at once
// (LoadSplitRow) before anything uses them: q's 8 dims of the thread and their rotation
// partners and, in the split that holds the new key (threads r0 == 0), the key's and value's.
// Loading q, then the new key after q was rotated, made that split the last to the merge in
// 30 of 32 heads; loading both before the zeroing: decode +1.1% (tests/bench/RESULTS.md, session 18).
struct SplitRowLoads {
  float q[8], qp[8];
  float k[8], kp[8], v[8];
};
__device__ __forceinline__ void LoadSplitRow(const float* __restrict__ row, const AttnShape& s, int h, int kvh,
                                             bool new_key, SplitRowLoads* L) {
  const int hd = s.head_dim, tpr = hd / 8;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  LoadPairs(row + h * hd, d0, hd, L->q, L->qp);
  if (new_key && r0 == 0) {
    LoadPairs(row + (s.heads + kvh) * hd, d0, hd, L->k, L->kp);
    const float* v = row + (s.heads + s.kv_heads + kvh) * hd + d0;
#pragma unroll
    for (int j = 0; j < 8; ++j) L->v[j] = v[j];
  }
}

// Scores q.k / sqrt(hd) of the split's keys, softmax statistics, P.V; the cached rows are
// in flight to ks / vs (cp.async), the new key (if any) stored.
__device__ __forceinline__ void SplitScoresAndPv(const float (&qf)[8], int nk, int hd, const __half* ks,
                                                 const __half* vs, float* p, float* wacc, float* s_acc,
                                                 float2* s_ml, unsigned long long* clk) {
  // tpr = hd / 8 threads cover one row with 8 dims each; par rows per pass.
  const int tpr = hd / 8, par = kThreads / tpr;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  CpAsyncWaitAll();
  __syncthreads();
  ClockMark(clk, 5);

  // Scores q.k / sqrt(hd) of the split's keys.
  for (int rb = 0; rb < nk; rb += par) {
    const int r = rb + r0;
    float dot = r < nk ? DotEight(qf, ks + r * hd + d0) : 0.f;
    for (int o = tpr / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (r < nk && d0 == 0) p[r] = dot;
  }
  __syncthreads();
  ClockMark(clk, 6);

  // Softmax statistics, computed by every warp (no block reduction).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float mx = -FLT_MAX;
  for (int j = lane; j < nk; j += 32) mx = fmaxf(mx, p[j]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
  for (int j = lane; j < nk; j += 32) sum += __expf(p[j] - mx);
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  ClockMark(clk, 7);

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
  ClockMark(clk, 8);
}


// The block's split of keys [k0, k0 + nk) of (row m, head h) at position pos, the new key
// last when nold < nk (cs: the RoPE angles of the thread's 8 dims at pos; L: LoadSplitRow's
// values): rotates q (and the new key, which it stores in shared memory and, for one q head
// per kv head, in the cache at new_at), then leaves the unnormalized P.V in s_acc[hd] and
// (max, sum) in *s_ml. The cached rows are in flight to ks / vs (cp.async).
__device__ __forceinline__ void SplitAttention(const SplitRowLoads& L, const float2 (&cs)[8],
                                               __half* __restrict__ k_cache, __half* __restrict__ v_cache,
                                               size_t new_at, const AttnShape& s, int h, int nk, int nold,
                                               __half* ks, __half* vs, float* p, float* wacc, float* s_acc,
                                               float2* s_ml, unsigned long long* clk = nullptr) {
  const int hd = s.head_dim, tpr = hd / 8;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  float qf[8];
  RopePairs(L.q, L.qp, d0, hd, cs, qf);
  const float scale = rsqrtf(static_cast<float>(hd));
#pragma unroll
  for (int j = 0; j < 8; ++j) qf[j] *= scale;
  ClockMark(clk, 4);
  if (nold < nk && r0 == 0) {  // this split holds the new key: rotate it, store it
    float kf[8];
    RopePairs(L.k, L.kp, d0, hd, cs, kf);
    StoreEight(ks + nold * hd + d0, kf);
    StoreEight(vs + nold * hd + d0, L.v);
    if (h % (s.heads / s.kv_heads) == 0) {  // one block per kv head writes the cache
      StoreEight(k_cache + new_at + d0, kf);
      StoreEight(v_cache + new_at + d0, L.v);
    }
  }
  SplitScoresAndPv(qf, nk, hd, ks, vs, p, wacc, s_acc, s_ml, clk);
}

}  // namespace rope_attn
}  // namespace llama::kernels
