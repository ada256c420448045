// SwiGLU: out[m, i] = fp16(silu(gate_up[m, i]) * gate_up[m, F + i]); gate_up fp32 [M, 2F].
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace llama::kernels {

cudaError_t LaunchSwiGlu(const float* gate_up, int ffn, __half* out, int rows, cudaStream_t stream);

}  // namespace llama::kernels
