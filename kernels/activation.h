// SwiGLU: out[m, i] = fp16(silu(gate_up[m, i]) * gate_up[m, F + i]); gate_up fp32 [M, 2F].
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace llama::kernels {

cudaError_t LaunchSwiGlu(const float* gate_up, int ffn, __half* out, int rows, cudaStream_t stream);
// The same from fp16 gate_up (the prefill GEMM's fp16 output); needs ffn % 4 == 0.
cudaError_t LaunchSwiGlu(const __half* gate_up, int ffn, __half* out, int rows, cudaStream_t stream);

}  // namespace llama::kernels
