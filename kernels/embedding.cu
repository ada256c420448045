#include "kernels/embedding.h"

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

// grid (parts, rows): block (part, m) copies its 1/parts of row m's dims; every block clears
// its share of zero.
__global__ void EmbeddingKernel(const __half* __restrict__ table, int dim, const int32_t* __restrict__ tokens,
                                float* __restrict__ x, float* zero, size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const int m = blockIdx.y, per = (dim + gridDim.x - 1) / gridDim.x;
  const int lo = blockIdx.x * per, hi = min(dim, lo + per);
  const __half* src = table + static_cast<size_t>(tokens[m]) * dim;
  float* dst = x + static_cast<size_t>(m) * dim;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) dst[i] = __half2float(src[i]);
}

}  // namespace

cudaError_t LaunchEmbedding(const __half* table, int dim, const int32_t* tokens, float* x, int rows,
                            cudaStream_t stream, float* zero, size_t zero_count, int parts) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 65535 || parts < 1 || parts > dim) return cudaErrorInvalidValue;
  return Launch(EmbeddingKernel, dim3(parts, rows), dim3(256), 0, stream, table, dim, tokens, x, zero, zero_count);
}

}  // namespace llama::kernels
