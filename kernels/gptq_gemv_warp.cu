// Warp-streaming GPTQ GEMV for one decode row (M == 1), tensor-core layout, uniform groups of
// 32/64/128 rows (kernels/README.md). Why: the split-K kernels of gptq_matmul.cu give every
// block a prologue (RMSNorm over the whole row, the act-order gather of x) and a short life
// of one 32 KB load, and spend ~14 instructions per 8 weights. Here each block computes the x
// of its K unit once, in mma B-fragment order with its per-group sums (plain fp16, SwiGLU,
// RMSNorm with the row's scale; each segment's act-order permutation applied), and each warp then streams one 16-column tile over that unit with
// kUnroll 16-byte loads in flight per lane at 6 instructions per 8 weights (the zero point is
// taken out per group through the sums instead of per weight). A separate input kernel
// (PrepareXKernel, into `xfrag` / `xsum`) computes it instead for attention-split inputs and
// for RMSNorm with warp_rms_in_block off; it costs a kernel boundary (tests/bench/RESULTS.md,
// session 3).
//
// Work: warp w of block b takes column tile (b / ksplit) * 8 + w and K unit b % ksplit, so
// the eight warps of a block read the same slice of x.
// Before the PDL wait (all immutable): the first kUnroll loads, and the unit's scales and
// zeros staged in the warp's shared memory.
#include "kernels/gemv_common.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using namespace gemv;

constexpr int kUnroll = 4;           // 64-row blocks (16-byte loads per lane) in flight per warp
constexpr int kMaxUnitKb = 32;       // kb_per_unit <= 32 (2048 rows)
constexpr int kMaxUnitGroups = 32;   // groups of one unit staged in shared memory (host checks)
constexpr int kPrepPer = 4;          // consecutive x values per PrepareX thread
constexpr int kPrepPerBlock = kThreads * kPrepPer;

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

// Prepare block `b` of the GEMV's input: for every segment s and stored row k,
// xfrag[s * K + XFragIndex(k)] = x[perm_s[k]] (fp16), and xsum[s * K / G + k / G] = the sum
// of those fp16 values over each group of G rows. Called after the PDL wait; whole block.
__device__ __forceinline__ void PrepareXBlock(const GptqMatrix& w, const GemvInput& in, int b, float* red,
                                              float* inv_rms) {
  const int total = w.num_segments * w.K;
  const int idx0 = b * kPrepPerBlock + threadIdx.x * kPrepPer;  // K % 64 == 0: one segment
  const bool here = idx0 < total;
  const int s = here ? idx0 / w.K : 0, k0 = idx0 - s * w.K;
  BlockInvRms<1>(in, w.K, red, inv_rms);
  const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[0] : 1.f;
  const float sum =
      here ? StageFourRows(in, w.K, SegmentPerm(w, s), k0, k0, inv, in.xfrag + static_cast<size_t>(s) * w.K) : 0.f;
  const int lanes = w.group_rows / kPrepPer;  // a group is 8, 16 or 32 aligned lanes
  const float group = GroupSum(sum, lanes);
  if (here && (threadIdx.x & (lanes - 1)) == 0) in.xsum[(s * w.K + k0) / w.group_rows] = group;
}

// Input kernel: one PrepareXBlock per block.
__global__ void __launch_bounds__(kThreads) PrepareXKernel(GptqMatrix w, GemvInput in) {
  __shared__ float red[kWarps];
  __shared__ float inv_rms[1];
  AllowDependents();
  WaitForPrerequisites();
  PrepareXBlock(w, in, blockIdx.x, red, inv_rms);
}

// Plain fp16, SwiGLU or (rms_in_block) RMSNorm input: the block computes its unit's x itself
// (rows [kb0, kb1) x 64 of segments s_lo..s_hi, act-order gathered) into s_x in fragment
// order, with the group sums.
template <int G>
__device__ __forceinline__ void StageDirect(const GptqMatrix& w, const GemvInput& in, int s_lo, int s_hi, int kb0,
                                            int kb1, uint4 (*s_x)[kMaxUnitKb * 8],
                                            float (*s_xsum)[kMaxUnitGroups], float* red, float* inv_rms) {
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

// GEMV block: 8 warps, 8 consecutive 16-column tiles, one K unit of 64-row blocks [kb0, kb1),
// whose x and group sums (of every segment the block touches) are staged in shared memory
// once: computed here for plain fp16, SwiGLU and (rms_in_block) RMSNorm inputs, copied from
// the input kernel's output for attention-split inputs and RMSNorm without rms_in_block.
// Warp: A fragments are 1024 + q (rows n0) and 1024 + 16 q (rows n1) straight from one LOP3
// each; a group's sums are fixed up once: s * (sum - (1024 + z) * xsum) and
// s / 16 * (sum - (1024 + 16 z) * xsum). Weights, scales and zeros are loaded before the PDL
// wait.
template <int G>
__global__ void __launch_bounds__(kThreads, 3) GptqGemvWarpKernel(GptqMatrix w, GemvInput in, float* __restrict__ out,
                                                                  int ksplit, int kb_per_unit, bool rms_in_block) {
  // Per group and lane row g: (scale n0, scale n1 / 16, 1024 + z n0, 1024 + 16 z n1).
  __shared__ float4 s_par[kWarps][kMaxUnitGroups][8];
  __shared__ uint4 s_x[kMaxSegments][kMaxUnitKb * 8];
  __shared__ float s_xsum[kMaxSegments][kMaxUnitGroups];
  __shared__ float red[kWarps];
  __shared__ float inv_rms[1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int nt0 = (blockIdx.x / ksplit) * kWarps, nt = nt0 + warp;  // absolute 16-column tiles
  const int kb_count = w.K / 64;
  const int kb0 = (blockIdx.x % ksplit) * kb_per_unit, kb1 = min(kb_count, kb0 + kb_per_unit);
  const bool active = nt * 16 < w.N;
  auto segment_of = [&](int tile) {
    int si = 0;
#pragma unroll
    for (int i = 1; i < kMaxSegments; ++i)
      if (i < w.num_segments && tile * 16 >= w.seg[i].n_begin) si = i;
    return si;
  };
  const int si = segment_of(nt);
  const uint4* q = reinterpret_cast<const uint4*>(w.qtiles) + static_cast<size_t>(nt) * kb_count * 32 + lane;
  uint4 cur[kUnroll];
#pragma unroll
  for (int i = 0; i < kUnroll; ++i)
    if (active && kb0 + i < kb1) cur[i] = __ldcs(q + (kb0 + i) * 32);
  const int g_first = kb0 * 64 / G, n_groups = (kb1 * 64 - 1) / G - g_first + 1;
  for (int i = lane; active && i < n_groups * 8; i += 32) {
    const int gi = i >> 3, r = i & 7;
    const size_t at = static_cast<size_t>(g_first + gi) * w.N + nt * 16 + r;
    s_par[warp][gi][r] = make_float4(__half2float(w.scales[at]), __half2float(w.scales[at + 8]) * (1.f / 16.f),
                                     1024.f + w.zeros[at], 1024.f + 16.f * w.zeros[at + 8]);
  }
  AllowDependents();
  WaitForPrerequisites();
  const int s_lo = segment_of(nt0), s_hi = segment_of(min(nt0 + kWarps, w.N / 16) - 1);
  if (in.kind == GemvSource::kHalf || in.kind == GemvSource::kSwiGlu ||
      (rms_in_block && in.kind == GemvSource::kRmsNorm)) {
    StageDirect<G>(w, in, s_lo, s_hi, kb0, kb1, s_x, s_xsum, red, inv_rms);
  } else {
    // Stage the prepared x (64 halves = 8 uint4 per 64-row block) and group sums.
    const int nx = (kb1 - kb0) * 8;
    for (int i = threadIdx.x; i < (s_hi - s_lo + 1) * nx; i += kThreads) {
      const int sg = s_lo + i / nx, j = i % nx;
      s_x[sg][j] = __ldcg(reinterpret_cast<const uint4*>(in.xfrag + static_cast<size_t>(sg) * w.K) + kb0 * 8 + j);
    }
    for (int i = threadIdx.x; i < (s_hi - s_lo + 1) * n_groups; i += kThreads) {
      const int sg = s_lo + i / n_groups, j = i % n_groups;
      s_xsum[sg][j] = __ldcg(in.xsum + static_cast<size_t>(sg) * (w.K / G) + g_first + j);
    }
  }
  __syncthreads();
  if (!active) return;

  const uint4* xs = &s_x[si][t * 2];
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
            par = s_par[warp][gl][g];
            gsum = s_xsum[si][gl];
          }
        }
        const uint32_t wd = words[cc], w8 = wd >> 8;
        const uint32_t a[4] = {AndOr(wd, lo, magic), AndOr(wd, hi, magic), AndOr(w8, lo, magic), AndOr(w8, hi, magic)};
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

}  // namespace

bool GptqGemvWarpFits(const GptqMatrix& w, const GemvInput& in, int M, int kb_per_unit) {
  const int G = w.group_rows;
  if (M != 1 || !w.qtiles || !in.xfrag || !in.xsum || (G != 32 && G != 64 && G != 128) || w.K % G != 0)
    return false;
  return kb_per_unit >= 1 && kb_per_unit <= kMaxUnitKb && kb_per_unit * 64 % G == 0 &&
         kb_per_unit * 64 / G <= kMaxUnitGroups;
}

namespace {
// The K unit per warp: K cut into the fewest equal units (64-row blocks, group-aligned, at
// most max_kb) that give `target` blocks (0: 13 x SMs / 5, about 2.6 per SM; measured on an
// H200 against 2 x SMs - 16 with units of at most 16: +3.5% decode, it takes gate|up to
// 32-block units), else the most units. Equal units: a short last unit idles its SMs.
int PickUnit(const GptqMatrix& w, const GemvInput& in, int max_kb, int target) {
  const int sms = SmCount() > 0 ? SmCount() : 132;
  const int tile_blocks = (w.N / 16 + kWarps - 1) / kWarps, kb_count = w.K / 64;
  const int align = w.group_rows > 64 ? w.group_rows / 64 : 1;
  int pick = 0;
  for (int ksplit = 1; ksplit <= kb_count; ++ksplit) {
    const int kb = ((kb_count + ksplit - 1) / ksplit + align - 1) / align * align;
    if (kb > max_kb || !GptqGemvWarpFits(w, in, 1, kb)) continue;
    pick = kb;
    if (tile_blocks * ((kb_count + kb - 1) / kb) >= (target > 0 ? target : 13 * sms / 5)) break;
  }
  return pick;
}
}  // namespace

cudaError_t LaunchGptqGemvWarp(const GptqMatrix& w, const GemvInput& in, float* out, const GemvTuning& tuning,
                               cudaStream_t stream) {
  const int kb = PickUnit(w, in, tuning.warp_kb, tuning.warp_target_blocks);
  const bool prepare = !tuning.warp_skip_prepare;
  if (kb == 0) return cudaErrorNotSupported;
  const bool rms_in_block = tuning.warp_rms_in_block;
  if (prepare && ((in.kind == GemvSource::kRmsNorm && !rms_in_block) || in.kind == GemvSource::kAttention)) {
    const int blocks = (w.num_segments * w.K + kPrepPerBlock - 1) / kPrepPerBlock;
    const cudaError_t e = Launch(PrepareXKernel, dim3(blocks), dim3(kThreads), 0, stream, w, in);
    if (e != cudaSuccess) return e;
  }
  const int ksplit = (w.K / 64 + kb - 1) / kb;
  const dim3 grid(((w.N / 16 + kWarps - 1) / kWarps) * ksplit);
  auto kernel = w.group_rows == 32 ? GptqGemvWarpKernel<32> : w.group_rows == 64 ? GptqGemvWarpKernel<64>
                                                                                 : GptqGemvWarpKernel<128>;
  return Launch(kernel, grid, dim3(kThreads), 0, stream, w, in, out, ksplit, kb, rms_in_block);
}

}  // namespace llama::kernels
