#include "kernels/sampling.h"

#include "kernels/launch.h"

#include <cfloat>

namespace llama::kernels {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ void Better(float v, int i, float& bv, int& bi) {
  if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
}

__device__ int BlockArgmax(const float* __restrict__ row, int vocab) {
  float bv = -FLT_MAX;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += kThreads) Better(row[i], i, bv, bi);
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    Better(ov, oi, bv, bi);
  }
  __shared__ float sv[32];
  __shared__ int si[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    bv = sv[lane];
    bi = si[lane];
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      Better(ov, oi, bv, bi);
    }
  }
  return bi == 0x7fffffff ? 0 : bi;  // valid in thread 0; all-NaN logits give 0, never an id past the vocab
}

__global__ void ArgmaxKernel(const float* __restrict__ logits, int vocab, int ld, int32_t* __restrict__ out) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits + static_cast<size_t>(blockIdx.x) * ld, vocab);
  if (threadIdx.x == 0) out[blockIdx.x] = best;
}

__global__ void GreedyAdvanceKernel(const float* __restrict__ logits, int vocab, int32_t* token, int32_t* pos,
                                    int32_t* history, int32_t* step) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits, vocab);
  if (threadIdx.x == 0) {
    history[*step] = best;
    *step += 1;
    token[0] = best;
    pos[0] += 1;
  }
}

__global__ void ArgmaxAdvanceKernel(const float* __restrict__ logits, int vocab, int ld, int32_t* token,
                                    int32_t* pos) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits + static_cast<size_t>(blockIdx.x) * ld, vocab);
  if (threadIdx.x == 0) {
    token[blockIdx.x] = best;
    pos[blockIdx.x] += 1;
  }
}

}  // namespace

cudaError_t LaunchArgmax(const float* logits, int vocab, int ld, int32_t* out, int rows,
                         cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, out);
}

cudaError_t LaunchArgmaxAdvance(const float* logits, int vocab, int ld, int32_t* token, int32_t* pos, int rows,
                                cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxAdvanceKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, token, pos);
}

cudaError_t LaunchGreedyAdvance(const float* logits, int vocab, int32_t* token, int32_t* pos,
                                int32_t* history, int32_t* step, cudaStream_t stream) {
  return Launch(GreedyAdvanceKernel, dim3(1), dim3(kThreads), 0, stream, logits, vocab, token, pos, history, step);
}

}  // namespace llama::kernels
