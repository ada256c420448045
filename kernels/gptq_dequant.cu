// GPTQ dequantization for the prefill path (gptq_matmul.h): W^T as fp16 [N, K] in the
// STORED row order, and the column gather that gives x the same order.
//
// Why this layout: the weight's stored order is act-order sorted, so writing W in original
// row order scattered every 32-byte row piece through the permutation and left the old kernel
// (dst [K, N]) at 1.85 TB/s, ~7 ms per 7B prefill, instruction-bound on 2-byte shared-memory
// writes (tests/bench/RESULTS.md, session 5). In [N, K] stored order a lane's tensor-core
// fragment already holds pairs of consecutive k for one column: one LOP3 per pair gives
// half2 (1024 + q_k, 1024 + q_k+1), one HSUB2 takes out 1024 + zero exactly and one HMUL2
// scales (the same bits as __float2half(scale * (q - zero))). The permutation moves to x:
// per segment x_perm[m, k] = x[m, perm[k]] (M x K, small next to the weight).
#include "kernels/gemv_common.cuh"
#include "kernels/gptq_matmul.h"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using gemv::AsBits;
using gemv::AsHalf2;

// The segment holding column n (compile-time indices keep w.seg in registers).
__device__ __forceinline__ GptqSegment SegmentAt(const GptqMatrix& w, int n) {
  GptqSegment seg = w.seg[0];
#pragma unroll
  for (int i = 1; i < kMaxSegments; ++i)
    if (i < w.num_segments && n >= w.seg[i].n_begin) seg = w.seg[i];
  return seg;
}

// (1024 + zero, 1024 + zero) and (scale, scale) of column n in group grp.
__device__ __forceinline__ void GroupParams(const GptqMatrix& w, int grp, int n, __half2* zz, __half2* ss) {
  const size_t at = static_cast<size_t>(grp) * w.N + n;
  *zz = __half2half2(__ushort_as_half(static_cast<unsigned short>(0x6400 + w.zeros[at])));
  *ss = __half2half2(w.scales[at]);
}

// Two consecutive-k values of one column from the low nibbles of each half of `bits`.
__device__ __forceinline__ uint32_t DequantPair(uint32_t bits, __half2 zz, __half2 ss) {
  return AsBits(__hmul2(__hsub2(AsHalf2((bits & 0x000F000Fu) | 0x64006400u), zz), ss));
}

// Tensor-core layout: one warp per 16-column x 64-row block (kernels/README.md: lane (g, t),
// word c holds rows 16c + 2t, +1, +8, +9 of columns g and g + 8). The warp assembles its
// 16 rows of W^T (64 halves each) in shared memory (rows padded to 72 halves: the half2
// writes of a word hit 32 distinct banks) and writes them as 16-byte stores, 128 contiguous
// bytes per row; the block's 4 warps take consecutive 64-row blocks of the same columns.
constexpr int kDequantWarps = 4;
constexpr int kRowHalves = 72;
__global__ void __launch_bounds__(kDequantWarps * 32) GptqDequantMmaKernel(GptqMatrix w, __half* __restrict__ dst) {
  AllowDependents();
  WaitForPrerequisites();  // dst may still be read by the previous GEMM
  __shared__ __align__(16) __half buf[kDequantWarps][16][kRowHalves];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kb_count = w.K / 64;
  const size_t job = static_cast<size_t>(blockIdx.x) * kDequantWarps + warp;
  if (job >= static_cast<size_t>(w.N / 16) * kb_count) return;
  const int nt = static_cast<int>(job / kb_count), kb = static_cast<int>(job % kb_count);
  const int g = lane >> 2, t = lane & 3;
  const int n0 = nt * 16 + g, n1 = n0 + 8;
  const GptqSegment seg = SegmentAt(w, nt * 16);
  const uint4 qv =
      __ldcs(reinterpret_cast<const uint4*>(w.qtiles) + (static_cast<size_t>(nt) * kb_count + kb) * 32 + lane);
  const uint32_t words[4] = {qv.x, qv.y, qv.z, qv.w};
  uint32_t* row0 = reinterpret_cast<uint32_t*>(&buf[warp][g][0]);
  uint32_t* row1 = reinterpret_cast<uint32_t*>(&buf[warp][g + 8][0]);
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const int grp = seg.word_group[(kb * 4 + c) * 2];  // a 16-row tile lies in one group
    __half2 z0, s0, z1, s1;
    GroupParams(w, grp, n0, &z0, &s0);
    GroupParams(w, grp, n1, &z1, &s1);
    const uint32_t wd = words[c];  // nibbles: a0 a2 a4 a6 | a1 a3 a5 a7 (see RepackGptqForMma)
    row0[c * 8 + t] = DequantPair(wd, z0, s0);            // column n0, k 16c + 2t, +1
    row1[c * 8 + t] = DequantPair(wd >> 4, z1, s1);       // column n1, k 16c + 2t, +1
    row0[c * 8 + t + 4] = DequantPair(wd >> 8, z0, s0);   // column n0, k 16c + 2t + 8, +9
    row1[c * 8 + t + 4] = DequantPair(wd >> 12, z1, s1);  // column n1, k 16c + 2t + 8, +9
  }
  __syncwarp();
#pragma unroll
  for (int h = 0; h < 4; ++h) {  // 16 rows x 8 chunks of 16 bytes
    const int r = h * 4 + (lane >> 3), j = lane & 7;
    *reinterpret_cast<uint4*>(dst + static_cast<size_t>(nt * 16 + r) * w.K + kb * 64 + j * 8) =
        *reinterpret_cast<const uint4*>(&buf[warp][r][j * 8]);
  }
}

// AutoGPTQ packing (any N % 4 == 0): thread = one word (8 rows) x 4 columns; each column's 8
// consecutive-k values are one 16-byte store.
__global__ void GptqDequantKernel(GptqMatrix w, __half* __restrict__ dst) {
  AllowDependents();
  WaitForPrerequisites();
  const int n = (blockIdx.x * blockDim.x + threadIdx.x) * 4;
  const int word = blockIdx.y;
  if (n >= w.N) return;
  const uint4 q = __ldcs(reinterpret_cast<const uint4*>(w.qweight + static_cast<size_t>(word) * w.N + n));
  const uint32_t qw[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const int grp = SegmentAt(w, n + c).word_group[word];
    __half2 zz, ss;
    GroupParams(w, grp, n + c, &zz, &ss);
    // Nibble i is row 8 word + i: pairs (0,1) (2,3) ... from (qw >> 4i) & 0xF | (qw >> 4i+4 & 0xF) << 16.
    uint32_t v[4];
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const uint32_t pair = ((qw[c] >> (8 * p)) & 0xFu) | (((qw[c] >> (8 * p + 4)) & 0xFu) << 16);
      v[p] = DequantPair(pair, zz, ss);
    }
    *reinterpret_cast<uint4*>(dst + static_cast<size_t>(n + c) * w.K + word * 8) = make_uint4(v[0], v[1], v[2], v[3]);
  }
}

// out[m, k] = x[m, perm[k]]: one block per row, staged in shared memory with 16-byte loads
// (random 2-byte reads from global memory left the first version at 32 us per 2048 x 4096
// call, latency-bound), then 8 consecutive k per thread: perm as two 16-byte loads, one
// 16-byte store.
__global__ void __launch_bounds__(256) GatherColumnsKernel(const __half* __restrict__ x, int ldx,
                                                           const int32_t* __restrict__ perm, int K,
                                                           __half* __restrict__ out) {
  extern __shared__ uint4 row_raw[];
  __half* row = reinterpret_cast<__half*>(row_raw);
  AllowDependents();
  WaitForPrerequisites();
  const int m = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(x + static_cast<size_t>(m) * ldx);
  for (int i = threadIdx.x; i < K / 8; i += blockDim.x) row_raw[i] = src[i];
  __syncthreads();
  uint4* dst = reinterpret_cast<uint4*>(out + static_cast<size_t>(m) * K);
  for (int i = threadIdx.x; i < K / 8; i += blockDim.x) {
    const int4 p0 = __ldg(reinterpret_cast<const int4*>(perm) + 2 * i);
    const int4 p1 = __ldg(reinterpret_cast<const int4*>(perm) + 2 * i + 1);
    __align__(16) __half v[8] = {row[p0.x], row[p0.y], row[p0.z], row[p0.w],
                                 row[p1.x], row[p1.y], row[p1.z], row[p1.w]};
    dst[i] = *reinterpret_cast<const uint4*>(v);
  }
}

}  // namespace

cudaError_t LaunchGptqDequant(const GptqMatrix& w, __half* dst, cudaStream_t stream) {
  if (w.K % 8 != 0 || w.N % 4 != 0 || w.num_segments < 1 || w.num_segments > kMaxSegments)
    return cudaErrorInvalidValue;
  if (w.qtiles) {
    const size_t jobs = static_cast<size_t>(w.N / 16) * (w.K / 64);
    return Launch(GptqDequantMmaKernel, dim3(static_cast<unsigned>((jobs + kDequantWarps - 1) / kDequantWarps)),
                  dim3(kDequantWarps * 32), 0, stream, w, dst);
  }
  const dim3 grid((w.N / 4 + 127) / 128, w.K / 8);
  return Launch(GptqDequantKernel, grid, dim3(128), 0, stream, w, dst);
}

cudaError_t LaunchGatherColumns(const __half* x, int ldx, const int32_t* perm, int M, int K, __half* out,
                                cudaStream_t stream) {
  // 16-byte rows and perm chunks; the row fits the default 48 KB of shared memory.
  if (K % 8 != 0 || ldx % 8 != 0 || M < 1 || ldx < K || !perm || K > 24 * 1024) return cudaErrorInvalidValue;
  return Launch(GatherColumnsKernel, dim3(M), dim3(256), static_cast<size_t>(K) * sizeof(__half), stream, x, ldx, perm,
                K, out);
}

}  // namespace llama::kernels
