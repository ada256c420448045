// GPTQ 4-bit GEMV (decode) and dequantization (prefill). Layout: kernels/README.md.
#include "kernels/gptq_matmul.h"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 256;              // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kColsPerBlock = 128;         // 32 lanes x 4 columns (one 16-byte load)
constexpr int kWordsPerWarp = 8;           // 8 x 8 = 64 rows per warp
constexpr int kWordsPerBlock = kWarps * kWordsPerWarp;  // 512 rows of K per block (split-K)

__device__ __forceinline__ __half2 AsHalf2(uint32_t bits) {
  return *reinterpret_cast<__half2*>(&bits);
}

// One block: 128 columns x 512 rows of K. Each thread streams 8 words of 4 columns
// (16-byte loads, evict-first), dequantizes two nibbles per LOP3 into half2 (1024 + q
// trick: (q | 0x6400) is the fp16 1024 + q), subtracts 1024 + zero exactly, multiplies by
// the activations in half2 for the 8 rows of a word, and accumulates word sums x scale in
// fp32. Warps are reduced through shared memory and added to `out` with atomics.
template <int M>
__global__ void __launch_bounds__(kThreads) GptqGemvKernel(GptqMatrix w, const __half* __restrict__ x,
                                                           int ldx, float* __restrict__ out, int ldo) {
  __shared__ uint4 xs[M][kWordsPerBlock];  // per word: half2 (x[8w+j], x[8w+j+4]) j = 0..3
  __shared__ float red[kWarps][M][kColsPerBlock];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int words = w.K / 8;
  const int w0 = blockIdx.y * kWordsPerBlock;
  const int nw = min(kWordsPerBlock, words - w0);

  // Weights do not depend on earlier kernels: start streaming them before waiting (PDL).
  const int n = blockIdx.x * kColsPerBlock + lane * 4;
  const int wl0 = warp * kWordsPerWarp;
  uint4 q[kWordsPerWarp];
  if (n < w.N) {
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      if (wl0 + i < nw)
        q[i] = __ldcs(reinterpret_cast<const uint4*>(w.qweight + static_cast<size_t>(w0 + wl0 + i) * w.N + n));
    }
  }
  AllowDependents();
  WaitForPrerequisites();

  // Gather the block's slice of x (act-order permutation applied here).
  for (int idx = tid; idx < M * nw * 8; idx += kThreads) {
    const int m = idx / (nw * 8), r = idx % (nw * 8);
    const int k = w0 * 8 + r;
    const int src = w.perm ? w.perm[k] : k;
    const int j = r & 7;
    __half* slot = reinterpret_cast<__half*>(&xs[m][r >> 3]);
    slot[(j & 3) * 2 + (j >> 2)] = x[m * ldx + src];
  }
  __syncthreads();

  float acc[M][4];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[m][c] = 0.f;

  if (n < w.N) {
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      const int wl = wl0 + i;
      if (wl >= nw) break;
      const int g = __ldg(w.word_group + w0 + wl);
      const uint2 sbits = __ldg(reinterpret_cast<const uint2*>(w.scales + static_cast<size_t>(g) * w.N + n));
      const uint32_t zbits = __ldg(reinterpret_cast<const uint32_t*>(w.zeros + static_cast<size_t>(g) * w.N + n));
      const float2 s01 = __half22float2(AsHalf2(sbits.x));
      const float2 s23 = __half22float2(AsHalf2(sbits.y));
      const float s[4] = {s01.x, s01.y, s23.x, s23.y};
      const uint32_t qw[4] = {q[i].x, q[i].y, q[i].z, q[i].w};
      uint4 xv[M];
#pragma unroll
      for (int m = 0; m < M; ++m) xv[m] = xs[m][wl];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const uint32_t z = (zbits >> (8 * c)) & 0xff;
        const __half2 z2 = AsHalf2((0x6400u + z) * 0x00010001u);
        __half2 d[4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          d[j] = __hsub2(AsHalf2(((qw[c] >> (4 * j)) & 0x000F000Fu) | 0x64006400u), z2);
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
    const int nn = blockIdx.x * kColsPerBlock + col;
    if (nn >= w.N) continue;
    float sum = 0.f;
#pragma unroll
    for (int wp = 0; wp < kWarps; ++wp) sum += red[wp][m][col];
    atomicAdd(out + static_cast<size_t>(m) * ldo + nn, sum);
  }
}

__global__ void GptqDequantKernel(GptqMatrix w, __half* __restrict__ dst) {
  AllowDependents();
  WaitForPrerequisites();  // dst may still be read by the previous GEMM
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  const int word = blockIdx.y;
  if (n >= w.N) return;
  const uint32_t q = w.qweight[static_cast<size_t>(word) * w.N + n];
  const int g = w.word_group[word];
  const float s = __half2float(w.scales[static_cast<size_t>(g) * w.N + n]);
  const int z = w.zeros[static_cast<size_t>(g) * w.N + n];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int k = word * 8 + i;
    const int row = w.perm ? w.perm[k] : k;
    const int qi = (q >> (4 * i)) & 15;
    dst[static_cast<size_t>(row) * w.N + n] = __float2half(s * static_cast<float>(qi - z));
  }
}

template <int M>
cudaError_t Gemv(const GptqMatrix& w, const __half* x, int ldx, float* out, int ldo, cudaStream_t s) {
  dim3 grid((w.N + kColsPerBlock - 1) / kColsPerBlock, (w.K / 8 + kWordsPerBlock - 1) / kWordsPerBlock);
  return Launch(GptqGemvKernel<M>, grid, dim3(kThreads), 0, s, w, x, ldx, out, ldo);
}

}  // namespace

cudaError_t LaunchGptqGemv(const GptqMatrix& w, const __half* x, int ldx, float* out, int ldo,
                           int M, cudaStream_t stream) {
  if (w.K % 8 != 0 || w.N % 4 != 0 || M < 1 || M > kGemvMaxRows) return cudaErrorInvalidValue;
  switch (M) {
    case 1: return Gemv<1>(w, x, ldx, out, ldo, stream);
    case 2: return Gemv<2>(w, x, ldx, out, ldo, stream);
    case 3: return Gemv<3>(w, x, ldx, out, ldo, stream);
    case 4: return Gemv<4>(w, x, ldx, out, ldo, stream);
    case 5: return Gemv<5>(w, x, ldx, out, ldo, stream);
    case 6: return Gemv<6>(w, x, ldx, out, ldo, stream);
    case 7: return Gemv<7>(w, x, ldx, out, ldo, stream);
    default: return Gemv<8>(w, x, ldx, out, ldo, stream);
  }
}

cudaError_t LaunchGptqDequant(const GptqMatrix& w, __half* dst, cudaStream_t stream) {
  if (w.K % 8 != 0) return cudaErrorInvalidValue;
  dim3 grid((w.N + 255) / 256, w.K / 8);
  return Launch(GptqDequantKernel, grid, dim3(256), 0, stream, w, dst);
}

}  // namespace llama::kernels
