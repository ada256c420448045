// Device helpers shared by the decode-attention kernels (attention.cu, rope_attention.cu,
// decode_step.cu) and the RoPE kernels (rope.cu): a lane's share of one fp16 K or V row is
// 8 dims, one 16-byte chunk; the RoPE arithmetic; cp.async of 16 bytes. Included by .cu files only.
#pragma once

#include <cuda_fp16.h>

#include <cfloat>
#include <cstdint>
#include <vector>

#include "kernels/vec_load.cuh"

namespace llama::kernels {

// Diagnosis (SetAttentionClock): thread 0 of a sampled block records clock64 (ClockMark) or
// %globaltimer (TimerMark: ns, comparable across SMs) at slot i; clk is null in the plain
// kernels, so neither leaves code there.
__device__ __forceinline__ void ClockMark(unsigned long long* clk, int i) {
  if (clk && threadIdx.x == 0) clk[i] = clock64();
}
__device__ __forceinline__ void TimerMark(unsigned long long* clk, int i) {
  if (!clk || threadIdx.x != 0) return;
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  clk[i] = t;
}
// Host side of the clock shared by the two clocked kernels (rope_attention.cu keeps the
// switch; rope_split_attention.cu its own buffer): whether SetAttentionClock is on, that the
// split kernel was the last launched clocked, and that kernel's buffer.
bool AttentionClockOn();
void NoteClockedSplitLaunch();
std::vector<uint64_t> ReadSplitAttentionClock();
// A clock buffer (a __device__ array of unsigned long long) copied to the host; empty on error.
template <typename Buffer>
std::vector<uint64_t> ReadClockBuffer(const Buffer& buffer) {
  std::vector<uint64_t> t(sizeof(Buffer) / sizeof(uint64_t), 0);
  if (cudaMemcpyFromSymbol(t.data(), buffer, sizeof(Buffer)) != cudaSuccess) t.clear();
  return t;
}

// Largest head dimension of the decode-attention kernels (attention.cu: head_dim / 8 threads
// per row, a power of two <= 32; rope_split_attention.cu: its per-dim shared accumulators).
constexpr int kMaxHeadDim = 256;

__device__ __forceinline__ void CpAsync16(void* dst_smem, const void* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst_smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void CpAsyncWaitAll() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// Rotate-half RoPE of the pair (lo, hi) = (x[i], x[i + hd / 2]) by cs = (cos, sin): the new
// x[i] and x[i + hd / 2]. Uncontracted (no FMA): every kernel that writes rotated q or k
// (rope.cu, the fused decode step, the persistent kernel) goes through these two, so they
// all write the same bits.
__device__ __forceinline__ float RopeLow(float lo, float hi, float2 cs) {
  return __fsub_rn(__fmul_rn(lo, cs.x), __fmul_rn(hi, cs.y));
}
__device__ __forceinline__ float RopeHigh(float lo, float hi, float2 cs) {
  return __fadd_rn(__fmul_rn(hi, cs.x), __fmul_rn(lo, cs.y));
}

// The (cos, sin) of dims d0..d0+7 from a position's row `cs` of the RoPE table.
__device__ __forceinline__ void RopeAngles(int d0, int hd, const float2* __restrict__ cs, float2 (&c)[8]) {
  const int half = hd / 2;
#pragma unroll
  for (int j = 0; j < 8; ++j) c[j] = cs[d0 + j < half ? d0 + j : d0 + j - half];
}

// x[d0..d0+7] into a and their rotation partners (d +- hd / 2) into b: one load of each (the
// selects stay on the indices: a select between two loaded values doubled a kernel's global
// loads). Apart from the arithmetic (RopePairs) so that a kernel can put them out together
// with others.
__device__ __forceinline__ void LoadPairs(const float* __restrict__ x, int d0, int hd, float (&a)[8], float (&b)[8]) {
  const int half = hd / 2;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int d = d0 + j;
    a[j] = x[d];
    b[j] = x[d < half ? d + half : d - half];
  }
}
// x[0..7] in two 16-byte loads (x 16-byte aligned): the split attention kernel's q, new key and
// value, whose 8 scalar loads a thread had each touched a sector per lane (session 32).
__device__ __forceinline__ void LoadEightVec(const float* __restrict__ x, float (&a)[8]) {
  Load4(x, a);
  Load4(x + 4, a + 4);
}
// RopeAngles in four 16-byte loads (hd % 16 == 0, cs 16-byte aligned).
__device__ __forceinline__ void RopeAnglesVec(int d0, int hd, const float2* __restrict__ cs, float2 (&c)[8]) {
  const int half = hd / 2;
  const float4* p = reinterpret_cast<const float4*>(cs + (d0 < half ? d0 : d0 - half));
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float4 v = p[j];
    c[2 * j] = make_float2(v.x, v.y);
    c[2 * j + 1] = make_float2(v.z, v.w);
  }
}
// Dims d0..d0+7 of rope(x) from LoadPairs' a and b, rounded through fp16 as the cache stores them.
__device__ __forceinline__ void RopePairs(const float (&a)[8], const float (&b)[8], int d0, int hd,
                                          const float2 (&c)[8], float (&out)[8]) {
  const int half = hd / 2;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const bool lo = d0 + j < half;
    out[j] = __half2float(__float2half(lo ? RopeLow(a[j], b[j], c[j]) : RopeHigh(b[j], a[j], c[j])));
  }
}
// Dims d0..d0+7 of rope(x) at the position whose angles of those dims are `c` (RopeAngles),
// loaded and rotated at once; RopeEight takes the position's table row.
__device__ __forceinline__ void RopeEightWith(const float* __restrict__ x, int d0, int hd, const float2 (&c)[8],
                                              float (&out)[8]) {
  float a[8], b[8];
  LoadPairs(x, d0, hd, a, b);
  RopePairs(a, b, d0, hd, c, out);
}
__device__ __forceinline__ void RopeEight(const float* __restrict__ x, int d0, int hd, const float2* __restrict__ cs,
                                          float (&out)[8]) {
  float2 c[8];
  RopeAngles(d0, hd, cs, c);
  RopeEightWith(x, d0, hd, c, out);
}

__device__ __forceinline__ uint4 PackEight(const float (&v)[8]) {
  uint4 u;
  __half2* h = reinterpret_cast<__half2*>(&u);
#pragma unroll
  for (int j = 0; j < 4; ++j) h[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
  return u;
}
__device__ __forceinline__ void StoreEight(__half* dst, const float (&v)[8]) {
  *reinterpret_cast<uint4*>(dst) = PackEight(v);
}

// q . k over the 8 dims of a 16-byte fp16 chunk (fma in dim order).
__device__ __forceinline__ float DotEight(const float (&q)[8], uint4 kv) {
  const __half2* kh = reinterpret_cast<const __half2*>(&kv);
  float dot = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 kf = __half22float2(kh[j]);
    dot = fmaf(q[2 * j], kf.x, dot);
    dot = fmaf(q[2 * j + 1], kf.y, dot);
  }
  return dot;
}
__device__ __forceinline__ float DotEight(const float (&q)[8], const __half* k) {
  return DotEight(q, *reinterpret_cast<const uint4*>(k));
}

// acc += e * v over the 8 dims of a 16-byte fp16 chunk.
__device__ __forceinline__ void AxpyEight(float e, uint4 vv, float (&acc)[8]) {
  const __half2* vh = reinterpret_cast<const __half2*>(&vv);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 vf = __half22float2(vh[j]);
    acc[2 * j] = fmaf(e, vf.x, acc[2 * j]);
    acc[2 * j + 1] = fmaf(e, vf.y, acc[2 * j + 1]);
  }
}
__device__ __forceinline__ void AxpyEight(float e, const __half* v, float (&acc)[8]) {
  AxpyEight(e, *reinterpret_cast<const uint4*>(v), acc);
}

// Merges the `splits` partials (max, sum) / acc[hd] of one (row, head), starting at partial
// index `first`, into out[0, hd) (fp16), with the block's threads (a multiple of 32). Reads
// through L2: the partials may have been written by other blocks of the same launch. Up to
// min(blockDim.x, kCombineSplits) splits, every load of a step is in flight at once: thread
// t reads split t's (max, sum), then each thread its dim of 16 splits at a time (at 36
// splits, loops of 8 loads were ~15 L2 round trips in a row: the tail of the split kernels).
constexpr int kCombineSplits = 128;
__device__ __forceinline__ void CombineHead(const float2* partial_ml, const float* partial_acc, size_t first,
                                            int splits, int hd, __half* out) {
  __shared__ float s_red[32];
  __shared__ float s_e[kCombineSplits], s_l[kCombineSplits];
  __shared__ float s_denom;
  if (splits > static_cast<int>(blockDim.x) || splits > kCombineSplits) {  // one split after another
    float mx = -FLT_MAX;
    for (int sp = 0; sp < splits; ++sp) mx = fmaxf(mx, __ldcg(&partial_ml[first + sp]).x);
    float denom = 0.f;
    for (int sp = 0; sp < splits; ++sp) {
      const float2 ml = __ldcg(&partial_ml[first + sp]);
      if (ml.y > 0.f) denom += __expf(ml.x - mx) * ml.y;
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
      float v = 0.f;
      for (int sp = 0; sp < splits; ++sp) {
        const float2 ml = __ldcg(&partial_ml[first + sp]);
        const float a = __ldcg(&partial_acc[(first + sp) * hd + d]);
        if (ml.y > 0.f) v += __expf(ml.x - mx) * a;
      }
      out[d] = __float2half(v / denom);
    }
    return;
  }
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const float2 ml = t < splits ? __ldcg(&partial_ml[first + t]) : make_float2(-FLT_MAX, 0.f);
  float mx = ml.x;
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) s_red[warp] = mx;
  __syncthreads();
  mx = s_red[0];
  for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) mx = fmaxf(mx, s_red[w]);
  if (t < splits) {
    s_e[t] = ml.y > 0.f ? __expf(ml.x - mx) : 0.f;
    s_l[t] = ml.y;
  }
  __syncthreads();
  if (t == 0) {  // in split order, as the cluster kernel's merge (rope_attention.cu) adds them
    float denom = 0.f;
    for (int sp = 0; sp < splits; ++sp)
      if (s_l[sp] > 0.f) denom += s_e[sp] * s_l[sp];
    s_denom = denom;
  }
  __syncthreads();
  for (int d = t; d < hd; d += blockDim.x) {
    float v = 0.f;
    for (int sp0 = 0; sp0 < splits; sp0 += 16) {
      float a[16];
#pragma unroll
      for (int j = 0; j < 16; ++j) a[j] = sp0 + j < splits ? __ldcg(&partial_acc[(first + sp0 + j) * hd + d]) : 0.f;
#pragma unroll
      for (int j = 0; j < 16; ++j)
        if (sp0 + j < splits && s_l[sp0 + j] > 0.f) v += s_e[sp0 + j] * a[j];
    }
    out[d] = __float2half(v / s_denom);
  }
}

// After a block wrote its split's partial of (row m, head h): the last of the `splits` blocks
// of that (row, head) to arrive merges them all into combined [rows, heads, hd] (arrivals:
// one counter per (row, head), reset by the last block for the next launch).
__device__ __forceinline__ void CombineIfLastSplit(const float2* partial_ml, const float* partial_acc,
                                                   uint32_t* arrivals, int m, int h, int heads, int splits, int hd,
                                                   __half* combined) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t* count = arrivals + static_cast<size_t>(m) * heads + h;
    last = atomicAdd(count, 1u) == static_cast<uint32_t>(splits - 1);
    if (last) *count = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const size_t first = (static_cast<size_t>(m) * heads + h) * splits;
  CombineHead(partial_ml, partial_acc, first, splits, hd, combined + (static_cast<size_t>(m) * heads + h) * hd);
}

}  // namespace llama::kernels
