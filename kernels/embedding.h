// Embedding gather: x[m, :] = float(table[tokens[m], :]); table fp16 [vocab, dim].
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

cudaError_t LaunchEmbedding(const __half* table, int dim, const int32_t* tokens, float* x, int rows,
                            cudaStream_t stream);

}  // namespace llama::kernels
