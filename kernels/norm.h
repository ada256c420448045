// RMSNorm: out[m, :] = fp16(x[m, :] * rsqrt(mean(x[m, :]^2) + eps) * weight), x fp32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace llama::kernels {

cudaError_t LaunchRmsNorm(const float* x, int ldx, const float* weight, int dim, float eps,
                          __half* out, int ldo, int rows, cudaStream_t stream);

}  // namespace llama::kernels
