#include "kernels/activation.h"

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

__global__ void SwiGluKernel(const float* __restrict__ gate_up, int ffn, __half* __restrict__ out, size_t total) {
  AllowDependents();
  WaitForPrerequisites();
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const size_t m = idx / ffn, i = idx % ffn;
  const float g = gate_up[m * 2 * ffn + i], u = gate_up[m * 2 * ffn + ffn + i];
  out[idx] = __float2half(g / (1.f + expf(-g)) * u);
}

}  // namespace

cudaError_t LaunchSwiGlu(const float* gate_up, int ffn, __half* out, int rows, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(rows) * ffn;
  if (total == 0) return cudaSuccess;
  return Launch(SwiGluKernel, dim3(static_cast<unsigned>((total + 255) / 256)), dim3(256), 0, stream, gate_up, ffn,
                out, total);
}

}  // namespace llama::kernels
