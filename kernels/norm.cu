#include "kernels/norm.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void RmsNormKernel(const float* __restrict__ x, int ldx, const float* __restrict__ weight,
                              int dim, float eps, __half* __restrict__ out, int ldo) {
  const float* row = x + static_cast<size_t>(blockIdx.x) * ldx;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += kThreads) ss = fmaf(row[i], row[i], ss);
  __shared__ float partial[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  const float inv = rsqrtf(partial[0] / dim + eps);
  __half* dst = out + static_cast<size_t>(blockIdx.x) * ldo;
  for (int i = threadIdx.x; i < dim; i += kThreads) dst[i] = __float2half(row[i] * inv * weight[i]);
}

}  // namespace

cudaError_t LaunchRmsNorm(const float* x, int ldx, const float* weight, int dim, float eps,
                          __half* out, int ldo, int rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  RmsNormKernel<<<rows, kThreads, 0, stream>>>(x, ldx, weight, dim, eps, out, ldo);
  return cudaGetLastError();
}

}  // namespace llama::kernels
