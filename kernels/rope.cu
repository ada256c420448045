#include "kernels/rope.h"

namespace llama::kernels {
namespace {

__global__ void RopeStoreKvKernel(const float* __restrict__ qkv, int ld_qkv, const int32_t* __restrict__ slot,
                                  const int32_t* __restrict__ pos, RopeShape s, __half* __restrict__ q_out,
                                  __half* __restrict__ k_cache, __half* __restrict__ v_cache) {
  const int m = blockIdx.x;
  const int p = pos[m];
  const int half_dim = s.head_dim / 2;
  const float* row = qkv + static_cast<size_t>(m) * ld_qkv;
  const int q_pairs = s.heads * half_dim, k_pairs = s.kv_heads * half_dim;
  const size_t kv_row = (static_cast<size_t>(slot[m]) * s.max_ctx + p) * s.kv_heads * s.head_dim;
  for (int idx = threadIdx.x; idx < q_pairs + k_pairs; idx += blockDim.x) {
    const bool is_q = idx < q_pairs;
    const int local = is_q ? idx : idx - q_pairs;
    const int head = local / half_dim, i = local % half_dim;
    const float inv_freq = 1.0f / powf(s.theta, static_cast<float>(2 * i) / s.head_dim);
    float sn, cs;
    sincosf(static_cast<float>(p) * inv_freq, &sn, &cs);
    const float* src = row + (is_q ? 0 : s.heads * s.head_dim) + head * s.head_dim;
    const float a = src[i], b = src[i + half_dim];
    __half* dst = is_q ? q_out + static_cast<size_t>(m) * s.heads * s.head_dim + head * s.head_dim
                       : k_cache + kv_row + head * s.head_dim;
    dst[i] = __float2half(a * cs - b * sn);
    dst[i + half_dim] = __float2half(b * cs + a * sn);
  }
  const float* v = row + (s.heads + s.kv_heads) * s.head_dim;
  for (int idx = threadIdx.x; idx < s.kv_heads * s.head_dim; idx += blockDim.x)
    v_cache[kv_row + idx] = __float2half(v[idx]);
}

}  // namespace

cudaError_t LaunchRopeStoreKv(const float* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const RopeShape& shape, __half* q_out, __half* k_cache, __half* v_cache,
                              int rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (shape.head_dim % 2 != 0) return cudaErrorInvalidValue;
  RopeStoreKvKernel<<<rows, 256, 0, stream>>>(qkv, ld_qkv, slot, pos, shape, q_out, k_cache, v_cache);
  return cudaGetLastError();
}

}  // namespace llama::kernels
