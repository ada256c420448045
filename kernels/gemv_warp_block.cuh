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

#include "kernels/gemv_warp_stage.cuh"

namespace llama::kernels::gemv {

// (a & mask) | magic in one LOP3 (the compiler splits it in two when both are immediates).
__device__ __forceinline__ uint32_t AndOr(uint32_t a, uint32_t mask, uint32_t magic) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(mask), "r"(magic));
  return r;
}

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
// kStageAll's row gather takes the act-order indices Pre loaded before the wait
// (StageRowGather's kPreIdx; session 23: +0.3 to +0.8% decode on the act-order layouts).
enum : int { kStageTwoTrip = 0, kStageOneTrip = 1, kStageRowGather = 2, kStageAll = 3 };
template <int G, int kStage = kStageTwoTrip, bool kSlots = false>
struct GemvWarpBlock {
  static constexpr bool kAll = kStage == kStageAll;
  static constexpr bool kOneTrip = kStage == kStageOneTrip || kAll;
  // Packed group parameters (PackPar), units of up to kMaxWideUnitGroups groups.
  static constexpr bool kPacked = kSlots && G == 32;
  // Segments whose x a block stages: kStageAll blocks lie in one segment (its launcher's
  // condition), staged in slot 0 (x_base = that segment); the others up to kMaxSegments.
  static constexpr int kXSegments = kAll ? 1 : kMaxSegments;
  // Groups a unit may have: what a unit of kMaxUnitKb 64-row blocks holds, capped by the
  // parameters' room (StageParams stages this many at most).
  static constexpr int kMaxGroups = kPacked ? kMaxWideUnitGroups : kMaxUnitGroups;
  static constexpr int kParGroups = kMaxUnitKb * 64 / G < kMaxGroups ? kMaxUnitKb * 64 / G : kMaxGroups;
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
    constexpr int kPasses = kParGroups * 8 / 64;
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
      StageRowGather<G, kAll>(w, in, s_lo, s_hi, kb0, kb1, sm, x_base, idx);
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
