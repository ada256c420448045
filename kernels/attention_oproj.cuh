// The o projection inside the cluster decode-attention kernel (rope_attention.cu with an
// AttnOProj, kernels/attention.h): the cluster of (row m, head h) owns o_proj's input rows
// [h hd, (h + 1) hd), and its block of split r owns the output columns [r N / splits,
// (r + 1) N / splits). Before the PDL wait each block copies that slice of the 4-bit weights
// (tensor-core layout, kernels/README.md) into shared memory and stages its scales and zero
// points; after its split's partial, every block merges the cluster's partials itself (no
// block waits on another's merge), rounds the head's output to fp16 in mma B-fragment order,
// and adds x_h . W[h rows, its columns] into out (fp32, atomically: the residual stream). The
// arithmetic per 16-column tile is the warp GEMV's (gemv_warp_block.cuh) over one group.
// Included by .cu files only.
#pragma once

#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/gemv_warp_block.cuh"

namespace llama::kernels::rope_attn {

// Shared memory of the o part, after the attention's (OProjSmem::At).
struct OProjSmem {
  uint4* w;       // [tiles][hd / 64][32]: the block's weight slice, one 16-byte load per lane
  float2* par;    // [columns]: (scale, zero point)
  uint4* x;       // [hd / 64 * 8]: the head's output, fp16, B-fragment order (XFragIndex)
  float* xsum;    // [1]: the sum of those fp16 values (the group's zero-point correction)
  static size_t Bytes(int hd, int columns) {
    return static_cast<size_t>(columns) * hd / 2 + columns * sizeof(float2) + hd * 2 + 16;
  }
  __device__ static OProjSmem At(unsigned char* base, int hd, int columns) {
    OProjSmem s;
    s.w = reinterpret_cast<uint4*>(base);
    base += static_cast<size_t>(columns) * hd / 2;
    s.par = reinterpret_cast<float2*>(base);
    base += columns * sizeof(float2);
    s.x = reinterpret_cast<uint4*>(base);
    s.xsum = reinterpret_cast<float*>(base + hd * 2);
    return s;
  }
};

// Before the wait (immutable data only): the block's weight slice in flight to shared memory
// (cp.async; waited for in OProjTail), its scales and zero points staged.
template <int kThreads>
__device__ __forceinline__ void OProjStage(const AttnOProj& o, int hd, int h, int split, int splits,
                                           const OProjSmem& sm) {
  const int columns = o.N / splits, c0 = split * columns, tiles = columns / 16;
  const int kbh = hd / 64, kb_count = o.K / 64;
  const uint4* q = reinterpret_cast<const uint4*>(o.qtiles);
  for (int i = threadIdx.x; i < tiles * kbh * 32; i += kThreads) {
    const int j = i / (kbh * 32), kb = (i / 32) % kbh, lane = i % 32;
    CpAsync16(sm.w + i, q + (static_cast<size_t>(c0 / 16 + j) * kb_count + h * kbh + kb) * 32 + lane);
  }
  for (int c = threadIdx.x; c < columns; c += kThreads) {
    const size_t at = static_cast<size_t>(h) * o.N + c0 + c;  // group h: one group per head
    int z = o.uniform_zero;
    if (z < 0) z = o.zeros4 ? ((o.zeros4[at >> 1] >> (4 * (at & 1))) & 15) + o.zeros4_offset : o.zeros[at];
    sm.par[c] = make_float2(__half2float(o.scales[at]), static_cast<float>(z));
  }
}

// After the block's split partial (s_ml, s_acc[hd] in shared memory, as MergeClusterSplits
// takes them): merge, o slice, atomic adds into out row m. Whole block; every block of the
// cluster calls it.
template <int kThreads>
__device__ __forceinline__ void OProjTail(const float2* s_ml, const float* s_acc, int hd, const AttnOProj& o, int m,
                                          int split, int splits, const OProjSmem& sm) {
  namespace cg = cooperative_groups;
  constexpr int kWarps = kThreads / 32;
  cg::cluster_group cluster = cg::this_cluster();
  __shared__ float s_e[kRopeAttnMaxSplits], s_l[kRopeAttnMaxSplits], s_red[kWarps];
  CpAsyncWaitAll();  // this thread's weight copies (blocks past their row's keys waited for none yet)
  cluster.sync();    // every split's partial is written; every thread's copies are visible
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (threadIdx.x < 32) {
    const float2 ml = lane < splits ? *cluster.map_shared_rank(s_ml, lane) : make_float2(-FLT_MAX, 0.f);
    float mx = ml.x;
    for (int s = 16; s > 0; s >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, s));
    if (lane < splits) {
      s_e[lane] = ml.y > 0.f ? __expf(ml.x - mx) : 0.f;  // 0: an empty split
      s_l[lane] = ml.y;
    }
  }
  __syncthreads();
  float denom = 0.f;
  for (int r = 0; r < splits; ++r)
    if (s_l[r] > 0.f) denom += s_e[r] * s_l[r];
  float part = 0.f;  // this thread's share of the sum of the fp16 outputs
  __half* xh = reinterpret_cast<__half*>(sm.x);
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float v = 0.f;
#pragma unroll 1
    for (int r0 = 0; r0 < splits; r0 += 8) {
      float a[8];
#pragma unroll
      for (int r = 0; r < 8; ++r) a[r] = r0 + r < splits ? cluster.map_shared_rank(s_acc, r0 + r)[d] : 0.f;
#pragma unroll
      for (int r = 0; r < 8; ++r)
        if (r0 + r < splits && s_l[r0 + r] > 0.f) v += s_e[r0 + r] * a[r];
    }
    const __half x = __float2half(v / denom);
    xh[gemv::XFragIndex(d)] = x;
    part += __half2float(x);
  }
  // Done reading the other blocks' shared memory: they may exit once everyone has arrived.
  cluster.barrier_arrive();
  for (int s = 16; s > 0; s >>= 1) part += __shfl_xor_sync(0xffffffffu, part, s);
  if (lane == 0) s_red[warp] = part;
  __syncthreads();
  float xsum = 0.f;
  for (int w = 0; w < kWarps; ++w) xsum += s_red[w];

  // Each warp: its run of 16-column tiles over the head's hd rows (one group).
  const int g = lane >> 2, t = lane & 3, kbh = hd / 64;
  const int columns = o.N / splits, tiles = columns / 16, per_warp = tiles / kWarps;
  const uint32_t lo = 0x000F000Fu, hi = 0x00F000F0u, magic = 0x64006400u;
  float* out = o.out + static_cast<size_t>(m) * o.N + split * columns;
  for (int j = warp * per_warp; j < (warp + 1) * per_warp; ++j) {
    float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    for (int kb = 0; kb < kbh; ++kb) {
      const uint4 wv = sm.w[(j * kbh + kb) * 32 + lane];
      const uint4 xa = sm.x[kb * 8 + t * 2], xb = sm.x[kb * 8 + t * 2 + 1];
      const uint32_t words[4] = {wv.x, wv.y, wv.z, wv.w};
      const uint32_t bx[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) {
        const uint32_t wd = words[cc], w8 = wd >> 8;
        const uint32_t a[4] = {gemv::AndOr(wd, lo, magic), gemv::AndOr(wd, hi, magic), gemv::AndOr(w8, lo, magic),
                               gemv::AndOr(w8, hi, magic)};
        gemv::Mma16816(c[cc & 1], a, bx[2 * cc], bx[2 * cc + 1]);
      }
    }
    // Rows g exactly 1024 + q, rows g + 8 as 1024 + 16 q (the warp GEMV's close()).
    const float2 p0 = sm.par[j * 16 + g], p1 = sm.par[j * 16 + g + 8];
    const float acc0 = p0.x * (c[0][0] + c[1][0] - (1024.f + p0.y) * xsum);
    const float acc1 = p1.x * (1.f / 16.f) * (c[0][2] + c[1][2] - (1024.f + 16.f * p1.y) * xsum);
    if (t == 0) {
      atomicAdd(out + j * 16 + g, acc0);
      atomicAdd(out + j * 16 + g + 8, acc1);
    }
  }
  cluster.barrier_wait();  // keep this block's partial alive until every block has merged
}

}  // namespace llama::kernels::rope_attn
