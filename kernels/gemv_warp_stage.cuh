// Staging of the warp-streaming GPTQ GEMV (kernels/gemv_warp_block.cuh): the unit sizes, the
// fragment order of x, the block's shared memory (GemvWarpSmem), and the ways a block computes
// its unit's x with its group sums after the dependency wait (StageDirect, StageOneTrip,
// StageRowGather). Included by gemv_warp_block.cuh.
#pragma once

#include "kernels/gemv_common.cuh"

namespace llama::kernels::gemv {

constexpr int kUnroll = 4;           // 64-row blocks (16-byte loads per lane) in flight per warp
constexpr int kMaxUnitKb = 32;       // kb_per_unit <= 32 (2048 rows)
constexpr int kMaxUnitGroups = 32;   // groups of one unit staged in shared memory (host checks)
// g32 with group slots (GemvTuning::warp_g32_wide): each group's parameters packed in 8 bytes
// instead of 16, so that a unit of up to 64 groups (2048 rows, as g64 / g128) fits the same
// shared memory; the group sums always have room for it.
constexpr int kMaxWideUnitGroups = 64;
constexpr int kPrepPer = 4;          // consecutive x values per PrepareX thread
constexpr int kPrepPerBlock = kThreads * kPrepPer;
constexpr int kMaxStageChunks = kMaxUnitKb * 64 / kPrepPerBlock;  // row chunks of a unit per thread

// Position of input row k (of one segment) in the fragment-ordered x: per 64-row block kb and
// lane column t, 16 halves: for each 16-row tile c, (x[2t], x[2t+1], x[2t+8], x[2t+9]).
__device__ __forceinline__ int XFragIndex(int k) {
  const int kb = k >> 6, r = k & 63, c = r >> 4, rr = r & 15;
  const int t = (rr & 7) >> 1;
  return ((kb * 4 + t) * 16) + c * 4 + (rr >> 3) * 2 + (rr & 1);
}

// The act-order permutation of segment `s` (null: identity).
__device__ __forceinline__ const int32_t* SegmentPerm(const GptqMatrix& w, int s) {
  const int32_t* perm = w.seg[0].perm;
#pragma unroll
  for (int i = 1; i < kMaxSegments; ++i)
    if (i == s) perm = w.seg[i].perm;
  return perm;
}

// Stored rows k..k+3 of one segment (x rows perm[k..k+3]) as fp16 inputs, written to dst at
// the fragment positions of local rows r..r+3; returns their sum.
__device__ __forceinline__ float StageFourRows(const GemvInput& in, int K, const int32_t* perm, int k, int r,
                                               float inv, __half* dst) {
  int src[kPrepPer];
#pragma unroll
  for (int j = 0; j < kPrepPer; ++j) src[j] = perm ? __ldg(perm + k + j) : k + j;
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < kPrepPer; ++j) {
    const __half v = InputValue(in, K, 0, src[j], inv, nullptr);
    dst[XFragIndex(r + j)] = v;
    sum += __half2float(v);
  }
  return sum;
}

// Sum over the `lanes` aligned lanes (a power of two <= 32) that hold one group.
__device__ __forceinline__ float GroupSum(float v, int lanes) {
  for (int o = 1; o < lanes; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Plain fp16, SwiGLU or (rms_in_block) RMSNorm input: the block computes its unit's x itself
// (rows [kb0, kb1) x 64 of segments s_lo..s_hi, act-order gathered) into s_x in fragment
// order, with the group sums.
template <int G>
__device__ __forceinline__ void StageDirect(const GptqMatrix& w, const GemvInput& in, int s_lo, int s_hi, int kb0,
                                            int kb1, uint4 (*s_x)[kMaxUnitKb * 8],
                                            float (*s_xsum)[kMaxWideUnitGroups], float* red, float* inv_rms) {
  const int rows = (kb1 - kb0) * 64;
  BlockInvRms<1>(in, w.K, red, inv_rms);  // RMSNorm: the whole row's scale first
  const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[0] : 1.f;
  for (int sg = s_lo; sg <= s_hi; ++sg) {
    const int32_t* perm = SegmentPerm(w, sg);
    __half* xh = reinterpret_cast<__half*>(s_x[sg]);
    for (int r0 = 0; r0 < rows; r0 += kPrepPerBlock) {
      const int r = r0 + threadIdx.x * kPrepPer;
      const float sum = r < rows ? StageFourRows(in, w.K, perm, kb0 * 64 + r, r, inv, xh) : 0.f;
      const float group = GroupSum(sum, G / kPrepPer);
      if (r < rows && (threadIdx.x & (G / kPrepPer - 1)) == 0) s_xsum[sg][r / G] = group;
    }
  }
}


// Shared memory of one GEMV block (static in GptqGemvWarpKernel, carved from the dynamic
// buffer in the persistent kernel): per warp and group the (scale n0, scale n1 / 16,
// 1024 + z n0, 1024 + 16 z n1) of its lane rows, `par_warp_bytes` a warp (GemvWarpBlock's
// kParWarpBytes: float4 entries, or PackPar's 8 bytes, for the most groups a unit of this G
// has); x of the unit and its group sums for `x_segments` segments (GemvWarpBlock's
// kXSegments). Sized per kernel because shared memory costs L1: an SM's L1 is what its
// shared-memory carve-out leaves, and the streaming GEMVs slowed down where three blocks
// needed the 196 KB carve-out (60 KB of L1) (tests/bench/RESULTS.md, session 22).
__host__ __device__ constexpr size_t GemvWarpSmemBytes(size_t par_warp_bytes, int x_segments) {
  return par_warp_bytes * kWarps + sizeof(uint4) * (x_segments * kMaxUnitKb * 8 + 2) +
         sizeof(float) * (x_segments * kMaxWideUnitGroups + kWarps + 4);
}
struct GemvWarpSmem {
  unsigned char* par;                // [kWarps][par_warp_bytes]
  uint4 (*x)[kMaxUnitKb * 8];        // [x_segments]
  uint4* zero;                       // [2]: 32 zero bytes (GemvWarpBlock kSlots)
  float (*xsum)[kMaxWideUnitGroups];  // [x_segments]
  float* red;                        // [kWarps]
  float* inv_rms;                    // [1]
  float* row = nullptr;              // kStageRowGather: [K] (dynamic shared memory, not in Bytes)
  static constexpr size_t kMaxParWarpBytes = sizeof(float4) * kMaxUnitGroups * 8;
  static constexpr size_t kBytes = GemvWarpSmemBytes(kMaxParWarpBytes, kMaxSegments);  // room for every GemvWarpBlock
  // Carves the arrays out of `base` (16-byte aligned, GemvWarpSmemBytes(par_warp_bytes, x_segments) long).
  __device__ __forceinline__ static GemvWarpSmem At(unsigned char* base, size_t par_warp_bytes = kMaxParWarpBytes,
                                                    int x_segments = kMaxSegments) {
    GemvWarpSmem s;
    s.par = base;
    base += par_warp_bytes * kWarps;
    s.x = reinterpret_cast<uint4(*)[kMaxUnitKb * 8]>(base);
    base += sizeof(uint4) * x_segments * kMaxUnitKb * 8;
    s.zero = reinterpret_cast<uint4*>(base);
    base += sizeof(uint4) * 2;
    s.xsum = reinterpret_cast<float(*)[kMaxWideUnitGroups]>(base);
    base += sizeof(float) * x_segments * kMaxWideUnitGroups;
    s.red = reinterpret_cast<float*>(base);
    s.inv_rms = s.red + kWarps;
    return s;
  }
};

// The unit's `rows` staged inputs into xh in fragment order and each group's sum into
// xsum[group]: value(c, j) is the fp16 input of local row c * kPrepPerBlock + kPrepPer *
// threadIdx.x + j (the thread's rows of chunk c).
template <int G, typename Value>
__device__ __forceinline__ void StageChunks(int rows, __half* xh, float* xsum, Value&& value) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int c = 0; c < kMaxStageChunks; ++c) {
    const int r = c * kPrepPerBlock + tid * kPrepPer;
    if (c * kPrepPerBlock >= rows) break;  // block-uniform: every thread reaches GroupSum
    float sum = 0.f;
    if (r < rows) {
#pragma unroll
      for (int j = 0; j < kPrepPer; ++j) {
        const __half h = value(c, j);
        xh[XFragIndex(r + j)] = h;
        sum += __half2float(h);
      }
    }
    const float group = GroupSum(sum, G / kPrepPer);
    if (r < rows && (tid & (G / kPrepPer - 1)) == 0) xsum[r / G] = group;
  }
}

// StageDirect in one round trip (GemvTuning::warp_one_trip; the block's columns in one
// segment): the unit's input values (act-order gathered through idx, loaded before the wait,
// or contiguous) and, for RMSNorm, the whole row's squares are all loaded before anything
// waits on them. The same arithmetic in the same order as StageDirect, so the same bits.
template <int G>
__device__ __forceinline__ void StageOneTrip(const GptqMatrix& w, const GemvInput& in, int kb0, int kb1,
                                             const int (&idx)[kMaxStageChunks][kPrepPer], bool gathered,
                                             const GemvWarpSmem& sm, int slot) {
  const int tid = threadIdx.x;
  const int rows = (kb1 - kb0) * 64, k0 = kb0 * 64, K = w.K;
  const bool rms = in.kind == GemvSource::kRmsNorm, glu = in.kind == GemvSource::kSwiGlu;
  float v[kMaxStageChunks][kPrepPer], u[kMaxStageChunks][kPrepPer];
#pragma unroll
  for (int c = 0; c < kMaxStageChunks; ++c) {
    const int r = c * kPrepPerBlock + tid * kPrepPer;
    if (r >= rows) continue;
    if (!gathered && in.kind != GemvSource::kHalf) {
      const float4 a = *reinterpret_cast<const float4*>(in.src + k0 + r);
      const float4 b = *reinterpret_cast<const float4*>(rms ? in.norm_weight + k0 + r : in.src + K + k0 + r);
      v[c][0] = a.x, v[c][1] = a.y, v[c][2] = a.z, v[c][3] = a.w;
      u[c][0] = b.x, u[c][1] = b.y, u[c][2] = b.z, u[c][3] = b.w;
      continue;
    }
#pragma unroll
    for (int j = 0; j < kPrepPer; ++j) {
      const int i = gathered ? idx[c][j] : k0 + r + j;
      if (in.kind == GemvSource::kHalf) {
        v[c][j] = __half2float(in.x[i]);
      } else {
        v[c][j] = in.src[i];
        u[c][j] = rms ? in.norm_weight[i] : in.src[K + i];
      }
    }
  }
  float ss = 0.f;
  if (rms) {
    const float4* row = reinterpret_cast<const float4*>(in.src);
#pragma unroll 4
    for (int i = tid; i < K / 4; i += kThreads) {
      const float4 a = row[i];
      ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
    }
  }
  float inv = 1.f;
  if (rms) inv = BlockRmsScale(ss, K, in.eps, sm.red);
  StageChunks<G>(rows, reinterpret_cast<__half*>(sm.x[slot]), sm.xsum[slot], [&](int c, int j) {
    const float a = v[c][j];
    return rms ? __float2half(a * inv * u[c][j]) : glu ? __float2half(a / (1.f + expf(-a)) * u[c][j]) : __float2half(a);
  });
}

// Indices into x of the rows this thread stages (StageRowGather's chunks): perm[k0 + r ..]
// (null perm: k0 + r ..).
__device__ __forceinline__ void LoadRowIndices(const int32_t* perm, int k0, int rows,
                                               int (&idx)[kMaxStageChunks][kPrepPer]) {
#pragma unroll
  for (int c = 0; c < kMaxStageChunks; ++c) {
    const int r = c * kPrepPerBlock + static_cast<int>(threadIdx.x) * kPrepPer, k = k0 + r;
    if (r >= rows) continue;
    const int4 p = perm ? __ldg(reinterpret_cast<const int4*>(perm + k)) : make_int4(k, k + 1, k + 2, k + 3);
    idx[c][0] = p.x, idx[c][1] = p.y, idx[c][2] = p.z, idx[c][3] = p.w;
  }
}

// RMSNorm input of an act-order matrix (GemvTuning::warp_row_gather): the whole row times the
// norm weights staged in shared memory (`row`, K floats) with the row's squares (the first
// segment's indices loaded during the reduction); each segment's rows are then gathered from
// shared memory instead of by random 4-byte global loads (two per row: value and norm
// weight). The product is rounded before the scale is applied, (x w) inv instead of
// (x inv) w: not the same bits as StageDirect, within fp32 rounding of them.
// Segment sg's x and group sums go to sm.x[sg - x_base], sm.xsum[sg - x_base].
// kPreIdx (kStageAll; one segment): the rows' indices are pre_idx, loaded before the wait
// (GemvWarpBlock::Pre), instead of loaded here after the row: the loop over the row ends a
// basic block, so those loads would start only once the row's loads have returned (one more
// L2 round trip after the wait; session 23: +0.3 to +0.8% decode on the act-order layouts).
template <int G, bool kPreIdx = false>
__device__ __forceinline__ void StageRowGather(const GptqMatrix& w, const GemvInput& in, int s_lo, int s_hi, int kb0,
                                               int kb1, const GemvWarpSmem& sm, int x_base,
                                               const int (&pre_idx)[kMaxStageChunks][kPrepPer]) {
  const int tid = threadIdx.x;
  const int rows = (kb1 - kb0) * 64, k0 = kb0 * 64, K = w.K;
  const float4* src = reinterpret_cast<const float4*>(in.src);
  const float4* nw = reinterpret_cast<const float4*>(in.norm_weight);
  float4* row = reinterpret_cast<float4*>(sm.row);
  float ss = 0.f;
#pragma unroll 4
  for (int i = tid; i < K / 4; i += kThreads) {
    const float4 a = src[i], b = __ldg(nw + i);
    ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
    row[i] = make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w);
  }
  int idx[kMaxStageChunks][kPrepPer];
  if constexpr (kPreIdx) {
#pragma unroll
    for (int c = 0; c < kMaxStageChunks; ++c)
#pragma unroll
      for (int j = 0; j < kPrepPer; ++j) idx[c][j] = pre_idx[c][j];
  } else {
    LoadRowIndices(SegmentPerm(w, s_lo), k0, rows, idx);  // in flight during the barrier
  }
  const float inv = BlockRmsScale(ss, K, in.eps, sm.red);  // its barrier also publishes the row
  for (int sg = s_lo; sg <= s_hi; ++sg) {
    if (sg != s_lo) LoadRowIndices(SegmentPerm(w, sg), k0, rows, idx);
    StageChunks<G>(rows, reinterpret_cast<__half*>(sm.x[sg - x_base]), sm.xsum[sg - x_base],
                   [&](int c, int j) { return __float2half(sm.row[idx[c][j]] * inv); });
  }
}

}  // namespace llama::kernels::gemv
