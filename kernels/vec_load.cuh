// Four consecutive values of an fp32 or fp16 array as floats (one 16- or 8-byte load; p
// aligned to 4 elements): lets an elementwise kernel read either precision of a GEMM output
// (CudaOptions::prefill_half_outputs). Included by .cu files only.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace llama::kernels {

__device__ __forceinline__ void Load4(const float* p, float v[4]) {
  const float4 f = *reinterpret_cast<const float4*>(p);
  v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
}

__device__ __forceinline__ void Load4(const __half* p, float v[4]) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
  v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

}  // namespace llama::kernels
