// Embedding gather: x[m, :] = float(table[tokens[m], :]); table fp16 [vocab, dim].
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace llama::kernels {

// zero[0, zero_count) is cleared on the way (see ZeroByGrid in launch.h). Each row is copied
// by `parts` blocks (1..dim), the zeroing shared by all of them; rows <= 65535.
cudaError_t LaunchEmbedding(const __half* table, int dim, const int32_t* tokens, float* x, int rows,
                            cudaStream_t stream, float* zero = nullptr, size_t zero_count = 0, int parts = 1);

}  // namespace llama::kernels
