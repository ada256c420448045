// RMSNorm: out[m, :] = fp16(x[m, :] * rsqrt(mean(x[m, :]^2) + eps) * weight), x fp32.
// Optionally zeroes `zero[0 .. zero_count)` on the way (the fp32 output of the split-K GEMV
// that follows, which accumulates with atomics): one kernel instead of a memset node.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

namespace llama::kernels {

cudaError_t LaunchRmsNorm(const float* x, int ldx, const float* weight, int dim, float eps,
                          __half* out, int ldo, int rows, cudaStream_t stream,
                          float* zero = nullptr, size_t zero_count = 0);

}  // namespace llama::kernels
