#include "kernels/rope.h"

#include <algorithm>

#include "kernels/attention_common.cuh"
#include "kernels/launch.h"
#include "kernels/vec_load.cuh"

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

// Decode-sized launches (< 64 rows): grid (rows, H + 2 KVH), block y < H rotates a query head,
// < H + KVH a key head (into the cache), else copies a value head; blockDim = hd. The
// grid-stride kernel below did not beat it for one decode row (472.9 vs 474.0 tok/s at 2048
// context, H200, session 5), so decode keeps it.
template <typename T>
__global__ void RopeStoreKvRowsKernel(const T* __restrict__ qkv, int ld_qkv, const int32_t* __restrict__ slot,
                                      const int32_t* __restrict__ pos, const float2* __restrict__ table, RopeShape s,
                                      __half* __restrict__ q_out, __half* __restrict__ k_cache,
                                      __half* __restrict__ v_cache, float* zero, size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const int m = blockIdx.x, head = blockIdx.y, i = threadIdx.x;
  const int hd = s.head_dim, half = hd / 2;
  const int p = pos[m];
  const T* src = qkv + static_cast<size_t>(m) * ld_qkv + head * hd;
  const size_t kv_row = (static_cast<size_t>(slot[m]) * s.max_ctx + p) * s.kv_heads * hd;
  if (head >= s.heads + s.kv_heads) {
    v_cache[kv_row + (head - s.heads - s.kv_heads) * hd + i] = __float2half(ToFloat(src[i]));
    return;
  }
  if (i >= half) return;
  const float2 cs = table[static_cast<size_t>(p) * half + i];
  const float a = ToFloat(src[i]), b = ToFloat(src[i + half]);
  __half* dst = head < s.heads ? q_out + (static_cast<size_t>(m) * s.heads + head) * hd
                               : k_cache + kv_row + (head - s.heads) * hd;
  dst[i] = __float2half(RopeLow(a, b, cs));
  dst[i + half] = __float2half(RopeHigh(a, b, cs));
}

// Prefill-sized launches: grid-stride over (row m, head, 4 pairs i..i+3 < hd / 2), 16-byte
// loads; heads < H rotate a query head, < H + KVH a key head (into the cache), the rest copy
// a value head (dims i.. and i + hd / 2..). A fixed grid instead of one block per (row, head):
// a 2048-row prefill made 196k blocks of 64 busy threads, and the block launches, not the
// bytes, set the time (7.8 ms of a 71 ms prefill, tests/bench/RESULTS.md, session 3).
template <typename T>
__global__ void RopeStoreKvQuadsKernel(const T* __restrict__ qkv, int ld_qkv, const int32_t* __restrict__ slot,
                                       const int32_t* __restrict__ pos, const float2* __restrict__ table, RopeShape s,
                                       int rows, __half* __restrict__ q_out, __half* __restrict__ k_cache,
                                       __half* __restrict__ v_cache, float* zero, size_t zero_count) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const int hd = s.head_dim, half = hd / 2, quads = half / 4, heads = s.heads + 2 * s.kv_heads;
  const int per_row = heads * quads, total = rows * per_row;  // < 2^31 (the launcher checks)
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const int m = idx / per_row, r = idx - m * per_row;
    const int head = r / quads, i = (r - head * quads) * 4;
    const int p = pos[m];
    const T* src = qkv + static_cast<size_t>(m) * ld_qkv + head * hd;
    const size_t kv_row = (static_cast<size_t>(slot[m]) * s.max_ctx + p) * s.kv_heads * hd;
    float a[4], b[4];
    Load4(src + i, a);
    Load4(src + i + half, b);
    float lo[4], hi[4];
    __half* dst;
    if (head >= s.heads + s.kv_heads) {
      dst = v_cache + kv_row + (head - s.heads - s.kv_heads) * hd;
#pragma unroll
      for (int j = 0; j < 4; ++j) lo[j] = a[j], hi[j] = b[j];
    } else {
      dst = head < s.heads ? q_out + (static_cast<size_t>(m) * s.heads + head) * hd
                           : k_cache + kv_row + (head - s.heads) * hd;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 cs = table[static_cast<size_t>(p) * half + i + j];
        lo[j] = RopeLow(a[j], b[j], cs);
        hi[j] = RopeHigh(a[j], b[j], cs);
      }
    }
    const __half2 l0 = __floats2half2_rn(lo[0], lo[1]), l1 = __floats2half2_rn(lo[2], lo[3]);
    const __half2 h0 = __floats2half2_rn(hi[0], hi[1]), h1 = __floats2half2_rn(hi[2], hi[3]);
    *reinterpret_cast<uint2*>(dst + i) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&l0), *reinterpret_cast<const uint32_t*>(&l1));
    *reinterpret_cast<uint2*>(dst + i + half) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&h0), *reinterpret_cast<const uint32_t*>(&h1));
  }
}

}  // namespace

cudaError_t LaunchRopeTable(float2* table, int max_ctx, int head_dim, float theta, cudaStream_t stream) {
  const int n = max_ctx * (head_dim / 2);
  RopeTableKernel<<<(n + 255) / 256, 256, 0, stream>>>(table, max_ctx, head_dim, theta);
  return cudaGetLastError();
}

namespace {

template <typename T>
cudaError_t RopeStoreKv(const T* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos, const float2* table,
                        const RopeShape& shape, __half* q_out, __half* k_cache, __half* v_cache, int rows,
                        cudaStream_t stream, float* zero, size_t zero_count) {
  if (rows <= 0) return cudaSuccess;
  if (shape.head_dim % 2 != 0 || shape.head_dim > 1024) return cudaErrorInvalidValue;
  if (rows < 64 || shape.head_dim % 8 != 0)
    return Launch(RopeStoreKvRowsKernel<T>, dim3(rows, shape.heads + 2 * shape.kv_heads), dim3(shape.head_dim), 0,
                  stream, qkv, ld_qkv, slot, pos, table, shape, q_out, k_cache, v_cache, zero, zero_count);
  constexpr int kThreads = 256;
  const size_t quads = static_cast<size_t>(rows) * (shape.heads + 2 * shape.kv_heads) * (shape.head_dim / 8);
  if (quads >= (size_t{1} << 31)) return cudaErrorInvalidValue;
  const int sms = SmCount() > 0 ? SmCount() : 132;
  const int blocks = static_cast<int>(std::min<size_t>((quads + kThreads - 1) / kThreads, static_cast<size_t>(sms) * 8));
  return Launch(RopeStoreKvQuadsKernel<T>, dim3(blocks), dim3(kThreads), 0, stream, qkv, ld_qkv, slot, pos, table,
                shape, rows, q_out, k_cache, v_cache, zero, zero_count);
}

}  // namespace

cudaError_t LaunchRopeStoreKv(const float* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const float2* table, const RopeShape& shape, __half* q_out, __half* k_cache,
                              __half* v_cache, int rows, cudaStream_t stream, float* zero, size_t zero_count) {
  return RopeStoreKv(qkv, ld_qkv, slot, pos, table, shape, q_out, k_cache, v_cache, rows, stream, zero, zero_count);
}

cudaError_t LaunchRopeStoreKv(const __half* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const float2* table, const RopeShape& shape, __half* q_out, __half* k_cache,
                              __half* v_cache, int rows, cudaStream_t stream) {
  return RopeStoreKv(qkv, ld_qkv, slot, pos, table, shape, q_out, k_cache, v_cache, rows, stream, nullptr, 0);
}

}  // namespace llama::kernels
