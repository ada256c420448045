// Rotate-half RoPE (Hugging Face Llama) fused with the KV-cache write.
// qkv is the fp32 output of the (fused) Q|K|V projection, row m = [q (H*hd) | k (KVH*hd) |
// v (KVH*hd)]. For row m at position pos[m] of cache slot slot[m]:
//   q_out[m, h, :] = fp16(rope(q))      k_cache[slot][pos][kvh][:] = fp16(rope(k))
//   v_cache[slot][pos][kvh][:] = fp16(v)
// with rope(x)[i] = x[i] cos - x[i + hd/2] sin, rope(x)[i + hd/2] = x[i + hd/2] cos + x[i] sin.
// cos/sin come from a table [max_ctx][hd/2] of float2 filled once by LaunchRopeTable with
// Hugging Face's fp32 angles (inv_freq = fp32(theta^(-2i/hd)), angle = fp32(pos * inv_freq)),
// cos/sin evaluated in double. Cache for one layer: [slots][max_ctx][KVH][hd] fp16.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

struct RopeShape {
  int heads = 0, kv_heads = 0, head_dim = 0, max_ctx = 0;
};

cudaError_t LaunchRopeTable(float2* table, int max_ctx, int head_dim, float theta, cudaStream_t stream);

cudaError_t LaunchRopeStoreKv(const float* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const float2* table, const RopeShape& shape, __half* q_out, __half* k_cache,
                              __half* v_cache, int rows, cudaStream_t stream, float* zero = nullptr,
                              size_t zero_count = 0);  // zero: see ZeroByGrid (launch.h)
// The same from an fp16 qkv (the prefill GEMM's fp16 output, CudaOptions::prefill_half_outputs).
cudaError_t LaunchRopeStoreKv(const __half* qkv, int ld_qkv, const int32_t* slot, const int32_t* pos,
                              const float2* table, const RopeShape& shape, __half* q_out, __half* k_cache,
                              __half* v_cache, int rows, cudaStream_t stream);

}  // namespace llama::kernels
