#include "kernels/embedding.h"

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

__global__ void EmbeddingKernel(const __half* __restrict__ table, int dim, const int32_t* __restrict__ tokens,
                                float* __restrict__ x, float* zero, size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const __half* src = table + static_cast<size_t>(tokens[blockIdx.x]) * dim;
  float* dst = x + static_cast<size_t>(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = __half2float(src[i]);
}

}  // namespace

cudaError_t LaunchEmbedding(const __half* table, int dim, const int32_t* tokens, float* x, int rows,
                            cudaStream_t stream, float* zero, size_t zero_count) {
  if (rows <= 0) return cudaSuccess;
  return Launch(EmbeddingKernel, dim3(rows), dim3(256), 0, stream, table, dim, tokens, x, zero, zero_count);
}

}  // namespace llama::kernels
