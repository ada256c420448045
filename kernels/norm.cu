#include "kernels/norm.h"

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads) RmsNormKernel(const float* __restrict__ x, int ldx,
                                                          const float* __restrict__ weight, int dim, float eps,
                                                          __half* __restrict__ out, int ldo, float* __restrict__ zero,
                                                          size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  if (zero) {
    const size_t per_block = (zero_count + gridDim.x - 1) / gridDim.x;
    const size_t b = per_block * blockIdx.x, e = min(zero_count, b + per_block);
    for (size_t i = b + threadIdx.x; i < e; i += kThreads) zero[i] = 0.f;
  }
  const float* row = x + static_cast<size_t>(blockIdx.x) * ldx;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += kThreads) ss = fmaf(row[i], row[i], ss);
  __shared__ float partial[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  const float inv = rsqrtf(total / dim + eps);
  __half* dst = out + static_cast<size_t>(blockIdx.x) * ldo;
  for (int i = threadIdx.x; i < dim; i += kThreads) dst[i] = __float2half(row[i] * inv * weight[i]);
}

}  // namespace

cudaError_t LaunchRmsNorm(const float* x, int ldx, const float* weight, int dim, float eps,
                          __half* out, int ldo, int rows, cudaStream_t stream, float* zero, size_t zero_count) {
  if (rows <= 0) return cudaSuccess;
  return Launch(RmsNormKernel, dim3(rows), dim3(kThreads), 0, stream, x, ldx, weight, dim, eps, out, ldo, zero,
                zero_count);
}

}  // namespace llama::kernels
