// Device helpers shared by the decode-attention kernels (attention.cu, rope_attention.cu): a
// lane's share of one fp16 K or V row is 8 dims, one 16-byte chunk. Included by .cu files only.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace llama::kernels {

// q . k over the 8 dims of the 16-byte fp16 chunk at `k` (fma in dim order).
__device__ __forceinline__ float DotEight(const float (&q)[8], const __half* k) {
  const uint4 kv = *reinterpret_cast<const uint4*>(k);
  const __half2* kh = reinterpret_cast<const __half2*>(&kv);
  float dot = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 kf = __half22float2(kh[j]);
    dot = fmaf(q[2 * j], kf.x, dot);
    dot = fmaf(q[2 * j + 1], kf.y, dot);
  }
  return dot;
}

// acc += e * v over the 8 dims of the 16-byte fp16 chunk at `v`.
__device__ __forceinline__ void AxpyEight(float e, const __half* v, float (&acc)[8]) {
  const uint4 vv = *reinterpret_cast<const uint4*>(v);
  const __half2* vh = reinterpret_cast<const __half2*>(&vv);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 vf = __half22float2(vh[j]);
    acc[2 * j] = fmaf(e, vf.x, acc[2 * j]);
    acc[2 * j + 1] = fmaf(e, vf.y, acc[2 * j + 1]);
  }
}

}  // namespace llama::kernels
