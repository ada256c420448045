#include "kernels/rope.h"

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

__global__ void RopeTableKernel(float2* table, int max_ctx, int head_dim, float theta) {
  const int half = head_dim / 2;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= max_ctx * half) return;
  const int p = idx / half, i = idx % half;
  const float inv_freq = static_cast<float>(1.0 / pow(static_cast<double>(theta), (2.0 * i) / head_dim));
  const float ang = static_cast<float>(p) * inv_freq;
  table[idx] = make_float2(static_cast<float>(cos(static_cast<double>(ang))),
                           static_cast<float>(sin(static_cast<double>(ang))));
}

// grid (rows, H + 2 KVH): block y < H rotates a query head, < H + KVH a key head (into the
// cache), else copies a value head. blockDim = hd.
__global__ void RopeStoreKvKernel(const float* __restrict__ qkv, int ld_qkv, const int32_t* __restrict__ slot,
                                  const int32_t* __restrict__ pos, const float2* __restrict__ table, RopeShape s,
                                  __half* __restrict__ q_out, __half* __restrict__ k_cache,
                                  __half* __restrict__ v_cache, float* zero, size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const int m = blockIdx.x, head = blockIdx.y, i = threadIdx.x;
  const int hd = s.head_dim, half = hd / 2;
  const int p = pos[m];
  const float* src = qkv + static_cast<size_t>(m) * ld_qkv + head * hd;
  const size_t kv_row = (static_cast<size_t>(slot[m]) * s.max_ctx + p) * s.kv_heads * hd;
  if (head >= s.heads + s.kv_heads) {
    v_cache[kv_row + (head - s.heads - s.kv_heads) * hd + i] = __float2half(src[i]);
    return;
  }
  if (i >= half) return;
  const float2 cs = table[static_cast<size_t>(p) * half + i];
  const float a = src[i], b = src[i + half];
  __half* dst = head < s.heads ? q_out + (static_cast<size_t>(m) * s.heads + head) * hd
                               : k_cache + kv_row + (head - s.heads) * hd;
  // Uncontracted, so that the fused decode step (rope_attention.cu) writes the same bits.
  dst[i] = __float2half(__fsub_rn(__fmul_rn(a, cs.x), __fmul_rn(b, cs.y)));
  dst[i + half] = __float2half(__fadd_rn(__fmul_rn(b, cs.x), __fmul_rn(a, cs.y)));
}

}  // namespace

cudaError_t LaunchRopeTable(float2* table, int max_ctx, int head_dim, float theta, cudaStream_t stream) {
  const int n = max_ctx * (head_dim / 2);
  RopeTableKernel<<<(n + 255) / 256, 256, 0, stream>>>(table, max_ctx, head_dim, theta);
  return cudaGetLastError();
}

cudaError_t LaunchRopeStoreKv(const float* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const float2* table, const RopeShape& shape, __half* q_out, __half* k_cache,
                              __half* v_cache, int rows, cudaStream_t stream, float* zero, size_t zero_count) {
  if (rows <= 0) return cudaSuccess;
  if (shape.head_dim % 2 != 0 || shape.head_dim > 1024) return cudaErrorInvalidValue;
  return Launch(RopeStoreKvKernel, dim3(rows, shape.heads + 2 * shape.kv_heads), dim3(shape.head_dim), 0, stream,
                qkv, ld_qkv, slot, pos, table, shape, q_out, k_cache, v_cache, zero, zero_count);
}

}  // namespace llama::kernels
