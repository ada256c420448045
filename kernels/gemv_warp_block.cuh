// The warp-streaming GPTQ GEMV's block, as device code (kernels/gptq_gemv_warp.cu describes
// the design): GptqGemvWarpKernel runs one block of it per CUDA block, the persistent decode
// kernel (kernels/decode_step.cu) runs its blocks inside its phases. Split in two so that a
// caller can put a dependency wait in between:
//   Pre  (immutable data only): the warp's first kUnroll weight loads, its scales and zeros
//        staged in shared memory (kStageOneTrip: the act-order indices of the rows it stages);
//   Post (after the wait): the unit's x staged in fragment order with its group sums
//        (kStageOneTrip: in one round trip; kStageRowGather: RMSNorm inputs gathered from the
//        row in shared memory), the stream over the unit (kSlots: StreamSlots, each group's
//        sums in an mma column of their own; else one fix-up per group as it ends), the
//        atomic adds into `out`. The persistent kernel keeps the per-group stream (kSlots off).
// Included by .cu files only.
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

// (a & mask) | magic in one LOP3 (the compiler splits it in two when both are immediates).
__device__ __forceinline__ uint32_t AndOr(uint32_t a, uint32_t mask, uint32_t magic) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(mask), "r"(magic));
  return r;
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

// A group's (s n0, s n1 / 16, 1024 + z n0, 1024 + 16 z n1) in 8 bytes: (s n0, s n1) and
// (1024 + z n0, 1024 + 16 z n1) as half2 (the zero terms are integers <= 1280: exact); the
// unpacked values are the same floats as the float4's.
__device__ __forceinline__ uint2 PackPar(__half2 s, float z0, float z1) {
  const __half2 z = __floats2half2_rn(z0, z1);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&s), *reinterpret_cast<const uint32_t*>(&z));
}
__device__ __forceinline__ float4 UnpackPar(uint2 v) {
  const float2 s = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
  const float2 z = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
  return make_float4(s.x, s.y * (1.f / 16.f), z.x, z.y);
}

// StageDirect in one round trip (GemvTuning::warp_one_trip; the block's columns in one
// segment): the unit's input values (act-order gathered through idx, loaded before the wait,
// or contiguous) and, for RMSNorm, the whole row's squares are all loaded before anything
// waits on them. The same arithmetic in the same order as StageDirect, so the same bits.
template <int G>
__device__ __forceinline__ void StageOneTrip(const GptqMatrix& w, const GemvInput& in, int kb0, int kb1,
                                             const int (&idx)[kMaxStageChunks][kPrepPer], bool gathered,
                                             const GemvWarpSmem& sm, int slot) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
  if (rms) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) sm.red[warp] = ss;
    __syncthreads();
    float tot = 0.f;
    for (int wp = 0; wp < kWarps; ++wp) tot += sm.red[wp];
    inv = rsqrtf(tot / K + in.eps);
  }
  __half* xh = reinterpret_cast<__half*>(sm.x[slot]);
#pragma unroll
  for (int c = 0; c < kMaxStageChunks; ++c) {
    const int r = c * kPrepPerBlock + tid * kPrepPer;
    if (c * kPrepPerBlock >= rows) break;  // block-uniform: every thread reaches GroupSum
    float sum = 0.f;
    if (r < rows) {
#pragma unroll
      for (int j = 0; j < kPrepPer; ++j) {
        const float a = v[c][j];
        const __half h = rms ? __float2half(a * inv * u[c][j])
                             : glu ? __float2half(a / (1.f + expf(-a)) * u[c][j]) : __float2half(a);
        xh[XFragIndex(r + j)] = h;
        sum += __half2float(h);
      }
    }
    const float group = GroupSum(sum, G / kPrepPer);
    if (r < rows && (tid & (G / kPrepPer - 1)) == 0) sm.xsum[slot][r / G] = group;
  }
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
// kPreIdx (kStageAllPreIdx; one segment): the rows' indices are pre_idx, loaded before the
// wait (GemvWarpBlock::Pre), instead of loaded here after the row: the loop over the row ends
// a basic block, so those loads would otherwise start only once the row's loads have returned.
template <int G, bool kPreIdx = false>
__device__ __forceinline__ void StageRowGather(const GptqMatrix& w, const GemvInput& in, int s_lo, int s_hi, int kb0,
                                               int kb1, const GemvWarpSmem& sm, int x_base,
                                               const int (&pre_idx)[kMaxStageChunks][kPrepPer]) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (lane == 0) sm.red[warp] = ss;
  __syncthreads();  // also publishes the row
  float tot = 0.f;
  for (int wp = 0; wp < kWarps; ++wp) tot += sm.red[wp];
  const float inv = rsqrtf(tot / K + in.eps);
  for (int sg = s_lo; sg <= s_hi; ++sg) {
    if (sg != s_lo) LoadRowIndices(SegmentPerm(w, sg), k0, rows, idx);
    __half* xh = reinterpret_cast<__half*>(sm.x[sg - x_base]);
#pragma unroll
    for (int c = 0; c < kMaxStageChunks; ++c) {
      const int r = c * kPrepPerBlock + tid * kPrepPer;
      if (c * kPrepPerBlock >= rows) break;  // block-uniform: every thread reaches GroupSum
      float sum = 0.f;
      if (r < rows) {
#pragma unroll
        for (int j = 0; j < kPrepPer; ++j) {
          const __half h = __float2half(sm.row[idx[c][j]] * inv);
          xh[XFragIndex(r + j)] = h;
          sum += __half2float(h);
        }
      }
      const float group = GroupSum(sum, G / kPrepPer);
      if (r < rows && (tid & (G / kPrepPer - 1)) == 0) sm.xsum[sg - x_base][r / G] = group;
    }
  }
}

// GEMV block `vb` of a grid of (N / 16 / 8) x ksplit blocks: 8 warps, 8 consecutive
// 16-column tiles, one K unit of 64-row blocks [kb0, kb1). Warp w takes column tile
// (vb / ksplit) * 8 + w and K unit vb % ksplit, so the eight warps of a block read the same
// slice of x. A fragments are 1024 + q (rows n0) and 1024 + 16 q (rows n1) straight from one
// LOP3 each; a group's sums are fixed up once: s * (sum - (1024 + z) * xsum) and
// s / 16 * (sum - (1024 + 16 z) * xsum).
// kStage (a template parameter: a path's registers would otherwise cost the others too):
// kStageOneTrip: StageOneTrip for direct inputs where the block's columns lie in one segment;
// kStageRowGather: StageRowGather for RMSNorm inputs (act-order matrices), StageDirect for
// the others; kStageAll (GemvTuning::warp_single_kernel): StageRowGather for act-order
// RMSNorm inputs and StageOneTrip for the others, so that one kernel serves every GEMV of a
// layer (its Pre also loads the one-trip indices of gathered rows, unused there). It holds
// no other staging (StageDirect alone is ~40 KB of sm_90 code: the kernel is 37-45 KB instead
// of 79-87), so its launcher takes it only where every block takes one of those two paths
// (LaunchGptqGemvWarp); a block that would need another traps.
// kSlots (GemvTuning::warp_group_slots): the stream of StreamSlots instead of Post's own loop.
// kStageAllPreIdx (GemvTuning::warp_gather_pre_idx, off; not yet measured): kStageAll whose
// row gather takes the indices Pre loaded (StageRowGather's kPreIdx).
enum : int { kStageTwoTrip = 0, kStageOneTrip = 1, kStageRowGather = 2, kStageAll = 3, kStageAllPreIdx = 4 };
template <int G, int kStage = kStageTwoTrip, bool kSlots = false>
struct GemvWarpBlock {
  static constexpr bool kAll = kStage == kStageAll || kStage == kStageAllPreIdx;
  static constexpr bool kOneTrip = kStage == kStageOneTrip || kAll;
  // Packed group parameters (PackPar), units of up to kMaxWideUnitGroups groups.
  static constexpr bool kPacked = kSlots && G == 32;
  // Segments whose x a block stages: kStageAll blocks lie in one segment (its launcher's
  // condition), staged in slot 0 (x_base = that segment); the others up to kMaxSegments.
  static constexpr int kXSegments = kAll ? 1 : kMaxSegments;
  static constexpr int kUnitRows = kMaxUnitKb * 64;
  static constexpr int kParGroups = (kPacked ? kMaxWideUnitGroups : kMaxUnitGroups) < kUnitRows / G
                                        ? (kPacked ? kMaxWideUnitGroups : kMaxUnitGroups)
                                        : kUnitRows / G;
  static constexpr int kParWarpBytes = kParGroups * 8 * (kPacked ? 8 : 16);  // GemvWarpSmem::par per warp
  static_assert(kParWarpBytes <= GemvWarpSmem::kMaxParWarpBytes, "GemvWarpSmem::kBytes too small");
  __device__ __forceinline__ static float4 (*Par(const GemvWarpSmem& sm, int warp))[8] {
    return reinterpret_cast<float4(*)[8]>(sm.par + warp * kParWarpBytes);
  }
  uint4 cur[kUnroll];
  int idx[kMaxStageChunks][kPrepPer];  // kOneTrip, act-order: x rows of the rows this thread stages
  const uint4* q = nullptr;
  int nt0 = 0, nt = 0, kb0 = 0, kb1 = 0, g_first = 0, n_groups = 0, si = 0;
  int x_base = 0;  // the segment staged in x slot 0 (kXSegments == 1)
  bool one_trip = false;
  bool active = false;

  __device__ __forceinline__ static int SegmentOf(const GptqMatrix& w, int tile) {
    int s = 0;
#pragma unroll
    for (int i = 1; i < kMaxSegments; ++i)
      if (i < w.num_segments && tile * 16 >= w.seg[i].n_begin) s = i;
    return s;
  }

  // Immutable data only: may run before the wait for the GEMV's input.
  __device__ __forceinline__ void Pre(const GptqMatrix& w, int vb, int ksplit, int kb_per_unit,
                                      const GemvWarpSmem& sm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    nt0 = (vb / ksplit) * kWarps;
    nt = nt0 + warp;  // absolute 16-column tile
    const int kb_count = w.K / 64;
    kb0 = (vb % ksplit) * kb_per_unit;
    kb1 = min(kb_count, kb0 + kb_per_unit);
    active = nt * 16 < w.N;
    si = SegmentOf(w, nt);
    const int s_lo = SegmentOf(w, nt0), s_hi = SegmentOf(w, min(nt0 + kWarps, w.N / 16) - 1);
    if (kXSegments == 1) x_base = s_lo;
    q = reinterpret_cast<const uint4*>(w.qtiles) + static_cast<size_t>(nt) * kb_count * 32 + lane;
#pragma unroll
    for (int i = 0; i < kUnroll; ++i)
      if (active && kb0 + i < kb1) cur[i] = __ldcs(q + (kb0 + i) * 32);
    one_trip = kOneTrip && s_lo == s_hi;
    const int32_t* perm = SegmentPerm(w, s_lo);
    if (kOneTrip && one_trip && perm) {
#pragma unroll
      for (int c = 0; c < kMaxStageChunks; ++c) {
        const int r = c * kPrepPerBlock + static_cast<int>(threadIdx.x) * kPrepPer;
        if (r >= (kb1 - kb0) * 64) continue;
        const int4 p = __ldg(reinterpret_cast<const int4*>(perm + kb0 * 64 + r));
        idx[c][0] = p.x, idx[c][1] = p.y, idx[c][2] = p.z, idx[c][3] = p.w;
      }
    }
    g_first = kb0 * 64 / G;
    n_groups = (kb1 * 64 - 1) / G - g_first + 1;
    StageParams(w, Par(sm, warp));
  }

  // The unit's scales and zeros of the warp's tile into par[group][lane row r]:
  // (s n0, s n1 / 16, 1024 + z n0, 1024 + 16 z n1). Each lane takes lane rows r, r + 1 of a
  // group per pass, and every pass's loads are issued before any is used: one round trip
  // (a loop that stored each load before the next took one per pass: up to 8 with g32).
  __device__ __forceinline__ void StageParams(const GptqMatrix& w, float4 (*par)[8]) const {
    constexpr int kMaxGroups = kPacked ? kMaxWideUnitGroups : kMaxUnitGroups;
    constexpr int kUnitGroups = kMaxUnitKb * 64 / G < kMaxGroups ? kMaxUnitKb * 64 / G : kMaxGroups;
    constexpr int kPasses = kUnitGroups * 8 / 64;
    const int lane = threadIdx.x & 31;
    uint32_t s0[kPasses], s1[kPasses];
    uint16_t z0[kPasses], z1[kPasses];
    const bool uniform = w.uniform_zero >= 0;              // no zero loads: all equal
    const bool packed = !uniform && w.zeros4 != nullptr;  // 4-bit zeros: one byte holds columns r, r + 1
#pragma unroll
    for (int p = 0; p < kPasses; ++p) {
      const int i = 2 * (lane + 32 * p), gi = i >> 3, r = i & 7;
      if (!active || i >= n_groups * 8) continue;
      const size_t at = static_cast<size_t>(g_first + gi) * w.N + nt * 16 + r;  // even: 4- / 2-byte aligned
      s0[p] = *reinterpret_cast<const uint32_t*>(w.scales + at);
      s1[p] = *reinterpret_cast<const uint32_t*>(w.scales + at + 8);
      if (uniform) {
        z0[p] = z1[p] = static_cast<uint16_t>(w.uniform_zero * 0x0101);
      } else if (packed) {
        z0[p] = w.zeros4[at >> 1];
        z1[p] = w.zeros4[(at >> 1) + 4];
      } else {
        z0[p] = *reinterpret_cast<const uint16_t*>(w.zeros + at);
        z1[p] = *reinterpret_cast<const uint16_t*>(w.zeros + at + 8);
      }
    }
    if (packed) {  // to the byte pairs of `zeros`: (r, r + 1) = (low nibble, high nibble) + offset
      const uint32_t off = static_cast<uint32_t>(w.zeros4_offset) * 0x0101u;
#pragma unroll
      for (int p = 0; p < kPasses; ++p) {
        z0[p] = static_cast<uint16_t>(((z0[p] & 0x0Fu) | (z0[p] & 0xF0u) << 4) + off);
        z1[p] = static_cast<uint16_t>(((z1[p] & 0x0Fu) | (z1[p] & 0xF0u) << 4) + off);
      }
    }
#pragma unroll
    for (int p = 0; p < kPasses; ++p) {
      const int i = 2 * (lane + 32 * p), gi = i >> 3, r = i & 7;
      if (!active || i >= n_groups * 8) continue;
      if constexpr (kPacked) {
        uint2(*packed)[8] = reinterpret_cast<uint2(*)[8]>(par);
        const __half2 a = AsHalf2(s0[p]), b = AsHalf2(s1[p]);
        packed[gi][r] = PackPar(__halves2half2(__low2half(a), __low2half(b)), 1024.f + (z0[p] & 0xFF),
                                1024.f + 16.f * (z1[p] & 0xFF));
        packed[gi][r + 1] = PackPar(__halves2half2(__high2half(a), __high2half(b)), 1024.f + (z0[p] >> 8),
                                    1024.f + 16.f * (z1[p] >> 8));
        continue;
      }
      const float2 a = __half22float2(AsHalf2(s0[p])), b = __half22float2(AsHalf2(s1[p]));
      par[gi][r] = make_float4(a.x, b.x * (1.f / 16.f), 1024.f + (z0[p] & 0xFF), 1024.f + 16.f * (z1[p] & 0xFF));
      par[gi][r + 1] = make_float4(a.y, b.y * (1.f / 16.f), 1024.f + (z0[p] >> 8), 1024.f + 16.f * (z1[p] >> 8));
    }
  }

  // After the wait: stages x (computed here for plain fp16, SwiGLU and, with rms_in_block,
  // RMSNorm inputs; copied from in.xfrag / in.xsum otherwise), then streams the unit. Whole
  // block (barriers inside); shared memory is still read by some warps when it returns.
  __device__ __forceinline__ void Post(const GptqMatrix& w, const GemvInput& in, float* out, bool rms_in_block,
                                       const GemvWarpSmem& sm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int s_lo = SegmentOf(w, nt0), s_hi = SegmentOf(w, min(nt0 + kWarps, w.N / 16) - 1);
    const bool direct = in.kind == GemvSource::kHalf || in.kind == GemvSource::kSwiGlu ||
                        (rms_in_block && in.kind == GemvSource::kRmsNorm);
    if ((kStage == kStageRowGather || (kAll && SegmentPerm(w, s_lo) != nullptr)) && rms_in_block &&
        in.kind == GemvSource::kRmsNorm) {
      if (kXSegments < kMaxSegments && s_hi - s_lo >= kXSegments) __trap();  // the launcher excludes it
      StageRowGather<G, kStage == kStageAllPreIdx>(w, in, s_lo, s_hi, kb0, kb1, sm, x_base, idx);
    } else if (kOneTrip && direct && one_trip) {
      StageOneTrip<G>(w, in, kb0, kb1, idx, SegmentPerm(w, s_lo) != nullptr, sm, s_lo - x_base);
    } else if (kAll) {
      __trap();  // the launcher's conditions exclude it (see above): never stream an unstaged x
    } else if (direct) {
      StageDirect<G>(w, in, s_lo, s_hi, kb0, kb1, sm.x, sm.xsum, sm.red, sm.inv_rms);
    } else {
      // Stage the prepared x (64 halves = 8 uint4 per 64-row block) and group sums.
      const int nx = (kb1 - kb0) * 8;
      for (int i = threadIdx.x; i < (s_hi - s_lo + 1) * nx; i += kThreads) {
        const int sg = s_lo + i / nx, j = i % nx;
        sm.x[sg][j] = __ldcg(reinterpret_cast<const uint4*>(in.xfrag + static_cast<size_t>(sg) * w.K) + kb0 * 8 + j);
      }
      for (int i = threadIdx.x; i < (s_hi - s_lo + 1) * n_groups; i += kThreads) {
        const int sg = s_lo + i / n_groups, j = i % n_groups;
        sm.xsum[sg][j] = __ldcg(in.xsum + static_cast<size_t>(sg) * (w.K / G) + g_first + j);
      }
    }
    if (kSlots && threadIdx.x < 2) sm.zero[threadIdx.x] = make_uint4(0u, 0u, 0u, 0u);
    __syncthreads();
    if (!active) return;
    if constexpr (kSlots) {
      StreamSlots(out, sm);
      return;
    }

    const uint4* xs = &sm.x[si - x_base][t * 2];
    const uint32_t lo = 0x000F000Fu, hi = 0x00F000F0u, magic = 0x64006400u;
    float acc0 = 0.f, acc1 = 0.f, c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    float4 par = make_float4(0.f, 0.f, 0.f, 0.f);
    float gsum = 0.f;
    int cur_g = -1;
    auto close = [&]() {
      acc0 = fmaf(par.x, c[0][0] + c[1][0] - par.z * gsum, acc0);
      acc1 = fmaf(par.y, c[0][2] + c[1][2] - par.w * gsum, acc1);
#pragma unroll
      for (int j = 0; j < 4; ++j) c[0][j] = c[1][j] = 0.f;
    };
    for (int kb = kb0; kb < kb1; kb += kUnroll) {
      uint4 nxt[kUnroll];
#pragma unroll
      for (int i = 0; i < kUnroll; ++i)
        if (kb + kUnroll + i < kb1) nxt[i] = __ldcs(q + (kb + kUnroll + i) * 32);
#pragma unroll
      for (int i = 0; i < kUnroll; ++i) {
        if (kb + i >= kb1) break;
        const uint4 xa = xs[(kb + i - kb0) * 8], xb = xs[(kb + i - kb0) * 8 + 1];
        const uint32_t words[4] = {cur[i].x, cur[i].y, cur[i].z, cur[i].w};
        const uint32_t bx[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
#pragma unroll
        for (int cc = 0; cc < 4; ++cc) {
          if (cc == 0 || (G == 32 && cc == 2)) {
            const int gl = ((kb + i) * 64 + cc * 16) / G - g_first;
            if (gl != cur_g) {
              if (cur_g >= 0) close();
              cur_g = gl;
              par = Par(sm, warp)[gl][g];
              gsum = sm.xsum[si - x_base][gl];
            }
          }
          const uint32_t wd = words[cc], w8 = wd >> 8;
          const uint32_t a[4] = {AndOr(wd, lo, magic), AndOr(wd, hi, magic), AndOr(w8, lo, magic),
                                 AndOr(w8, hi, magic)};
          Mma16816(c[cc & 1], a, bx[2 * cc], bx[2 * cc + 1]);
        }
      }
#pragma unroll
      for (int i = 0; i < kUnroll; ++i) cur[i] = nxt[i];
    }
    close();
    if (t == 0) {
      atomicAdd(out + nt * 16 + g, acc0);
      atomicAdd(out + nt * 16 + g + 8, acc1);
    }
  }

  // kSlots: the unit's stream with every group's sums in an mma column of its own. Lanes of
  // column g (lane / 4) feed x only to the k-tiles of groups j with j % 8 == g and read 16
  // zero bytes for the others, so C column j % 8 sums group j alone. Eight groups are then
  // fixed up at once, each lane those of its two C columns (2t, 2t + 1), instead of every lane
  // closing every group as soon as its mma results arrive (g32: two closes per 64-row block,
  // each one a wait on the mma pipe). The lanes of a row sum their partials at the end.
  __device__ __forceinline__ void StreamSlots(float* out, const GemvWarpSmem& sm) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const uint4* xs = &sm.x[si - x_base][t * 2];
    const uint32_t lo = 0x000F000Fu, hi = 0x00F000F0u, magic = 0x64006400u;
    float acc0 = 0.f, acc1 = 0.f, c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    auto close = [&](int base) {  // groups base .. base + 7 (unit-local), base % 8 == 0
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int gi = base + 2 * t + j;
        if (gi < n_groups) {
          const float4 p = kPacked ? UnpackPar(reinterpret_cast<const uint2(*)[8]>(Par(sm, warp))[gi][g])
                                   : Par(sm, warp)[gi][g];
          const float xsum = sm.xsum[si - x_base][gi];
          acc0 = fmaf(p.x, c[0][j] + c[1][j] - p.z * xsum, acc0);
          acc1 = fmaf(p.y, c[0][2 + j] + c[1][2 + j] - p.w * xsum, acc1);
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) c[0][j] = c[1][j] = 0.f;
    };
    for (int it = 0, kb = kb0; kb < kb1; ++it, kb += kUnroll) {
      uint4 nxt[kUnroll];
#pragma unroll
      for (int i = 0; i < kUnroll; ++i)
        if (kb + kUnroll + i < kb1) nxt[i] = __ldcs(q + (kb + kUnroll + i) * 32);
#pragma unroll
      for (int i = 0; i < kUnroll; ++i) {
        if (kb + i >= kb1) break;
        const int blk = it * kUnroll + i;  // unit-local 64-row block (units are group-aligned)
        const uint32_t words[4] = {cur[i].x, cur[i].y, cur[i].z, cur[i].w};
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // 32-row halves: k-tiles 2h, 2h + 1, one group
          const int gl = (blk * 64 + h * 32) / G;
          // The other half's zero slot: its banks differ from the real rows' (4 lanes, 32 B apart).
          const uint4 xv = *((gl & 7) == g ? xs + blk * 8 + h : sm.zero + (h ^ 1));
          const uint32_t bx[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int cc = 2 * h + j;
            const uint32_t wd = words[cc], w8 = wd >> 8;
            const uint32_t a[4] = {AndOr(wd, lo, magic), AndOr(wd, hi, magic), AndOr(w8, lo, magic),
                                   AndOr(w8, hi, magic)};
            Mma16816(c[j], a, bx[2 * j], bx[2 * j + 1]);
          }
          if ((blk * 64 + h * 32 + 32) % G == 0 && (gl & 7) == 7) close(gl - 7);
        }
      }
#pragma unroll
      for (int i = 0; i < kUnroll; ++i) cur[i] = nxt[i];
    }
    if (((n_groups - 1) & 7) != 7) close((n_groups - 1) & ~7);
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
      acc0 += __shfl_xor_sync(0xffffffffu, acc0, o);
      acc1 += __shfl_xor_sync(0xffffffffu, acc1, o);
    }
    if (t == 0) {
      atomicAdd(out + nt * 16 + g, acc0);
      atomicAdd(out + nt * 16 + g + 8, acc1);
    }
  }
};

}  // namespace llama::kernels::gemv
