// GPTQ 4-bit GEMV (decode; prefill dequantization: gptq_dequant.cu). Layout: kernels/README.md.
#include "kernels/gptq_matmul.h"

#include <algorithm>
#include <cfloat>

#include "kernels/gemv_common.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using namespace gemv;  // kThreads, kWarps, AsHalf2, Mma16816, InputValue, prologue helpers

constexpr int kColsPerBlock = 128;         // 32 lanes x 4 columns (one 16-byte load)
constexpr int kWordsPerWarp = 8;           // 8 x 8 = 64 rows per warp
constexpr int kWordsPerBlock = kWarps * kWordsPerWarp;  // 512 rows of K per block (split-K)

// One block: 128 columns (of one segment) x 512 rows of K. Each thread streams 8 words of
// 4 columns (16-byte loads, evict-first), dequantizes two nibbles per LOP3 into half2
// (q | 0x6400 is the fp16 1024 + q), subtracts 1024 + zero exactly, multiplies by the
// activations in half2 over the 8 rows of a word, and accumulates word sums x scale in fp32.
// Warps are reduced through shared memory and added to `out` with atomics.
template <int M>
__global__ void __launch_bounds__(kThreads) GptqGemvKernel(GptqMatrix w, GemvInput in, float* __restrict__ out,
                                                           int ldo) {
  __shared__ uint4 xs[M][kWordsPerBlock];  // per word: half2 (x[8w+j], x[8w+j+4]) j = 0..3
  __shared__ float red[kWarps][M][kColsPerBlock];
  __shared__ float inv_rms[M];
  constexpr int kAttnWeights = M > 4 ? kMaxAttnWeights / 2 : kMaxAttnWeights;
  __shared__ float attn_w[kAttnWeights];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // This block's segment and column tile (compile-time indices keep w.seg in registers).
  int tile = blockIdx.x;
  const GptqSegment seg = FindSegment(w, kColsPerBlock, &tile);
  const int words = w.K / 8;
  const int w0 = blockIdx.y * kWordsPerBlock;
  const int nw = min(kWordsPerBlock, words - w0);
  const int n = seg.n_begin + tile * kColsPerBlock + lane * 4;
  const bool active = n < seg.n_end;

  // Weights do not depend on earlier kernels: start streaming them before waiting (PDL).
  const int wl0 = warp * kWordsPerWarp;
  uint4 q[kWordsPerWarp];
  if (active) {
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      if (wl0 + i < nw)
        q[i] = __ldcs(reinterpret_cast<const uint4*>(w.qweight + static_cast<size_t>(w0 + wl0 + i) * w.N + n));
    }
  }
  AllowDependents();
  WaitForPrerequisites();

  BlockInvRms<M>(in, w.K, &red[0][0][0], inv_rms);
  const float* attn_weights = BlockAttnWeights(in, w.K, M, attn_w, kAttnWeights);
  // The block's slice of x, permuted (act order) and in word-pair order.
  for (int m = 0; m < M; ++m) {
    const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[m] : 1.f;
    for (int r = tid; r < nw * 8; r += kThreads) {
      const int k = w0 * 8 + r;
      const int src = seg.perm ? seg.perm[k] : k;
      const int j = r & 7;
      reinterpret_cast<__half*>(&xs[m][r >> 3])[(j & 3) * 2 + (j >> 2)] = InputValue(in, w.K, m, src, inv, attn_weights);
    }
  }
  __syncthreads();

  float acc[M][4];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[m][c] = 0.f;

  if (active) {
    int cur_g = -1;
    float s[4];
    __half2 z2[4];
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      const int wl = wl0 + i;
      if (wl >= nw) break;
      const int g = __ldg(seg.word_group + w0 + wl);
      if (g != cur_g) {  // scales and zeros change once per group, not per word
        cur_g = g;
        const uint2 sbits = __ldg(reinterpret_cast<const uint2*>(w.scales + static_cast<size_t>(g) * w.N + n));
        const uint32_t zbits = __ldg(reinterpret_cast<const uint32_t*>(w.zeros + static_cast<size_t>(g) * w.N + n));
        const float2 s01 = __half22float2(AsHalf2(sbits.x)), s23 = __half22float2(AsHalf2(sbits.y));
        s[0] = s01.x;
        s[1] = s01.y;
        s[2] = s23.x;
        s[3] = s23.y;
#pragma unroll
        for (int c = 0; c < 4; ++c) z2[c] = AsHalf2((0x6400u + ((zbits >> (8 * c)) & 0xffu)) * 0x00010001u);
      }
      const uint32_t qw[4] = {q[i].x, q[i].y, q[i].z, q[i].w};
      uint4 xv[M];
#pragma unroll
      for (int m = 0; m < M; ++m) xv[m] = xs[m][wl];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        __half2 d[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) d[j] = __hsub2(AsHalf2(((qw[c] >> (4 * j)) & 0x000F000Fu) | 0x64006400u), z2[c]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          __half2 a = __hmul2(d[0], AsHalf2(xv[m].x));
          a = __hfma2(d[1], AsHalf2(xv[m].y), a);
          a = __hfma2(d[2], AsHalf2(xv[m].z), a);
          a = __hfma2(d[3], AsHalf2(xv[m].w), a);
          const float2 f = __half22float2(a);
          acc[m][c] = fmaf(s[c], f.x + f.y, acc[m][c]);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int c = 0; c < 4; ++c) red[warp][m][lane * 4 + c] = acc[m][c];
  __syncthreads();
  for (int idx = tid; idx < M * kColsPerBlock; idx += kThreads) {
    const int m = idx / kColsPerBlock, col = idx % kColsPerBlock;
    const int nn = seg.n_begin + tile * kColsPerBlock + col;
    if (nn >= seg.n_end) continue;
    float sum = 0.f;
#pragma unroll
    for (int wp = 0; wp < kWarps; ++wp) sum += red[wp][m][col];
    atomicAdd(out + static_cast<size_t>(m) * ldo + nn, sum);
  }
}

// Tensor-core variant. Block: 8 warps x one 16-column tile each (128 columns of one segment)
// x 512 rows of K. Per 16x16 k-tile a lane dequantizes its eight A-fragment values and one
// mma.m16n8k16 (fp32 accumulation) multiplies them by the activations (B: 16 k x 8 batch
// rows); each group's partial sum is scaled in fp32 (MmaTileAccumulator, gemv_common.cuh).

constexpr int kMmaKPerBlock = 512;  // 32 k-tiles, 8 16-byte loads per lane
constexpr int kXRowsPerThread = kMmaKPerBlock / kThreads;

template <int M>
__global__ void __launch_bounds__(kThreads) GptqGemvMmaKernel(GptqMatrix w, GemvInput in, float* __restrict__ out,
                                                              int ldo) {
  __shared__ __align__(16) __half xs[M][kMmaKPerBlock + 8];
  constexpr int kMaxGroups = kMmaKPerBlock / 16;      // groups of >= 16 rows
  __shared__ float s_scale[kMaxGroups][kColsPerBlock];  // this block's scales and zeros
  __shared__ uint8_t s_zero[kMaxGroups][kColsPerBlock];
  __shared__ uint8_t tile_group[kMaxGroups];            // group of each 16-row k-tile (block-relative)
  __shared__ float red[kWarps];
  __shared__ float inv_rms[M];
  constexpr int kAttnWeights = M > 4 ? kMaxAttnWeights / 2 : kMaxAttnWeights;
  __shared__ float attn_w[kAttnWeights];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  int tile = blockIdx.x;
  const GptqSegment seg = FindSegment(w, kColsPerBlock, &tile);
  const int n_tile0 = seg.n_begin + tile * kColsPerBlock + warp * 16;  // this warp's 16 columns
  const bool active = n_tile0 < seg.n_end;
  const int k_begin = blockIdx.y * kMmaKPerBlock;
  const int nk = min(kMmaKPerBlock, w.K - k_begin);  // multiple of 64
  const int kb_count = w.K / 64;

  uint4 q[kMmaKPerBlock / 64];
  if (active) {
    const uint4* base = reinterpret_cast<const uint4*>(w.qtiles) +
                        (static_cast<size_t>(n_tile0 / 16) * kb_count + k_begin / 64) * 32 + lane;
#pragma unroll
    for (int i = 0; i < kMmaKPerBlock / 64; ++i)
      if (i * 64 < nk) q[i] = __ldcs(base + i * 32);
  }
  // Scales, zeros and the k-tile -> group map of this block: weights too, so before the wait.
  const int g_first = seg.word_group[k_begin / 8];
  const int n_groups = seg.word_group[(k_begin + nk - 1) / 8] - g_first + 1;
  const int col0 = seg.n_begin + tile * kColsPerBlock;
  for (int i = tid; i < n_groups * kColsPerBlock; i += kThreads) {
    const int gi = i / kColsPerBlock, col = i % kColsPerBlock;
    if (col0 + col < seg.n_end) {
      const size_t at = static_cast<size_t>(g_first + gi) * w.N + col0 + col;
      s_scale[gi][col] = __half2float(w.scales[at]);
      s_zero[gi][col] = w.zeros[at];
    }
  }
  if (tid < nk / 16) tile_group[tid] = static_cast<uint8_t>(seg.word_group[(k_begin + tid * 16) / 8] - g_first);
  // The act-order sources of this thread's x rows (immutable, so before the wait too).
  int src[kXRowsPerThread];
#pragma unroll
  for (int j = 0; j < kXRowsPerThread; ++j) {
    const int k = k_begin + tid + j * kThreads;
    src[j] = seg.perm && tid + j * kThreads < nk ? __ldg(seg.perm + k) : k;
  }
  AllowDependents();
  WaitForPrerequisites();

  BlockInvRms<M>(in, w.K, red, inv_rms);
  const float* attn_weights = BlockAttnWeights(in, w.K, M, attn_w, kAttnWeights);
  for (int m = 0; m < M; ++m) {
    const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[m] : 1.f;
    __half v[kXRowsPerThread];
#pragma unroll
    for (int j = 0; j < kXRowsPerThread; ++j)
      if (tid + j * kThreads < nk) v[j] = InputValue(in, w.K, m, src[j], inv, attn_weights);
#pragma unroll
    for (int j = 0; j < kXRowsPerThread; ++j)
      if (tid + j * kThreads < nk) xs[m][tid + j * kThreads] = v[j];
  }
  __syncthreads();
  if (!active) return;

  const int n0 = n_tile0 + g;
  const int c0 = n0 - col0, c1 = c0 + 8;  // block-relative columns of n0 and n1 = n0 + 8
  const int xm = g < M ? g : M - 1;  // batch column g of B; columns >= M are discarded
  MmaTileAccumulator t_acc;
  int cur_g = -1;
#pragma unroll
  for (int i = 0; i < kMmaKPerBlock / 64; ++i) {
    if (i * 64 >= nk) break;
    const uint32_t words[4] = {q[i].x, q[i].y, q[i].z, q[i].w};
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int kl = i * 64 + c * 16;  // k-tile start within the block
      const int grp = tile_group[kl / 16];
      if (grp != cur_g) {
        if (cur_g >= 0) t_acc.CloseGroup();
        cur_g = grp;
        t_acc.SetGroup(s_scale[grp][c0], s_scale[grp][c1], s_zero[grp][c0], s_zero[grp][c1]);
      }
      t_acc.Add(c & 1, words[c], *reinterpret_cast<const uint32_t*>(&xs[xm][kl + 2 * t]),
                *reinterpret_cast<const uint32_t*>(&xs[xm][kl + 2 * t + 8]));
    }
  }
  t_acc.CloseGroup();
  t_acc.Store(out, ldo, M, n0, t);
}

template <int M>
cudaError_t Gemv(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, cudaStream_t s) {
  int tiles = 0;
  for (int i = 0; i < w.num_segments; ++i)
    tiles += (w.seg[i].n_end - w.seg[i].n_begin + kColsPerBlock - 1) / kColsPerBlock;
  if (w.qtiles) {
    const dim3 grid(tiles, (w.K + kMmaKPerBlock - 1) / kMmaKPerBlock);
    return Launch(GptqGemvMmaKernel<M>, grid, dim3(kThreads), 0, s, w, in, out, ldo);
  }
  const dim3 grid(tiles, (w.K / 8 + kWordsPerBlock - 1) / kWordsPerBlock);
  return Launch(GptqGemvKernel<M>, grid, dim3(kThreads), 0, s, w, in, out, ldo);
}

}  // namespace

cudaError_t LaunchGptqGemv(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, int M,
                           cudaStream_t stream, int warp_target_blocks) {
  if (w.K % 8 != 0 || w.N % 4 != 0 || M < 1 || M > kGemvMaxRows || w.num_segments < 1 ||
      w.num_segments > kMaxSegments)
    return cudaErrorInvalidValue;
  if (in.kind == GemvSource::kRmsNorm && w.K % 4 != 0) return cudaErrorInvalidValue;
  GemvTuning tuning = GetGemvTuning();
  if (warp_target_blocks > 0) tuning.warp_target_blocks = warp_target_blocks;
  if (tuning.warp && M == 1) {
    const cudaError_t warp = LaunchGptqGemvWarp(w, in, out, tuning, stream);
    if (warp != cudaErrorNotSupported) return warp;
  }
  const cudaError_t streamed = LaunchGptqGemvStream(w, in, out, ldo, M, tuning, stream);
  if (streamed != cudaErrorNotSupported) return streamed;
  switch (M) {
    case 1: return Gemv<1>(w, in, out, ldo, stream);
    case 2: return Gemv<2>(w, in, out, ldo, stream);
    case 3: return Gemv<3>(w, in, out, ldo, stream);
    case 4: return Gemv<4>(w, in, out, ldo, stream);
    case 5: return Gemv<5>(w, in, out, ldo, stream);
    case 6: return Gemv<6>(w, in, out, ldo, stream);
    case 7: return Gemv<7>(w, in, out, ldo, stream);
    default: return Gemv<8>(w, in, out, ldo, stream);
  }
}

}  // namespace llama::kernels

namespace llama::kernels {

bool GptqMmaLayoutFits(int K, int N) { return K % 64 == 0 && N % 16 == 0; }

bool PackGptqZeros4(const uint8_t* zeros, size_t count, uint8_t* out, int* offset) {
  if (count % 2 != 0) return false;
  uint8_t lo = 255, hi = 0;
  for (size_t i = 0; i < count; ++i) lo = std::min(lo, zeros[i]), hi = std::max(hi, zeros[i]);
  const int off = hi <= 15 ? 0 : lo >= 1 && hi <= 16 ? 1 : -1;
  if (off < 0) return false;
  for (size_t j = 0; j < count / 2; ++j)
    out[j] = static_cast<uint8_t>((zeros[2 * j] - off) | (zeros[2 * j + 1] - off) << 4);
  *offset = off;
  return true;
}

int UniformGptqZero(const uint8_t* zeros, size_t count) {
  if (count == 0) return -1;
  for (size_t i = 1; i < count; ++i)
    if (zeros[i] != zeros[0]) return -1;
  return zeros[0];
}

void RepackGptqForMma(const uint32_t* q, int K, int N, uint32_t* out) {
  auto nib = [&](int k, int n) { return (q[static_cast<size_t>(k / 8) * N + n] >> (4 * (k % 8))) & 15u; };
  const int kb_count = K / 64;
  for (int nt = 0; nt < N / 16; ++nt)
    for (int kb = 0; kb < kb_count; ++kb)
      for (int lane = 0; lane < 32; ++lane)
        for (int c = 0; c < 4; ++c) {
          const int g = lane >> 2, t = lane & 3, k0 = (kb * 4 + c) * 16;
          const int n0 = nt * 16 + g, n1 = n0 + 8;
          const uint32_t a0 = nib(k0 + 2 * t, n0), a1 = nib(k0 + 2 * t + 1, n0);
          const uint32_t a2 = nib(k0 + 2 * t, n1), a3 = nib(k0 + 2 * t + 1, n1);
          const uint32_t a4 = nib(k0 + 2 * t + 8, n0), a5 = nib(k0 + 2 * t + 9, n0);
          const uint32_t a6 = nib(k0 + 2 * t + 8, n1), a7 = nib(k0 + 2 * t + 9, n1);
          out[((static_cast<size_t>(nt) * kb_count + kb) * 32 + lane) * 4 + c] =
              a0 | a2 << 4 | a4 << 8 | a6 << 12 | a1 << 16 | a3 << 20 | a5 << 24 | a7 << 28;
        }
}

}  // namespace llama::kernels
