// Fused causal flash-attention prefill (FlashAttention-2 style, mma.sync tensor cores) for
// head_dim 128: the same result as LaunchPrefillAttention (attention.h) without the S / P
// scratch, the cuBLAS calls or the softmax kernel. Other head dims are refused
// (cudaErrorNotSupported) so that callers fall back to LaunchPrefillAttention.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "kernels/attention.h"

namespace llama::kernels {

// Causal attention for rows t = 0..T-1 of one slot at positions start + t, reading keys 0..start+t from the cache.
// q fp16 [T, H*hd]; k_cache, v_cache fp16 [slots][max_ctx][KVH][hd]; out fp16 [T, H*hd]; scale 1/sqrt(hd);
// grouped-query heads (query head h reads kv head h / (H / KVH)); fp32 softmax and accumulation.
// Returns cudaErrorNotSupported for shapes it does not handle (head_dim != 128, or q / caches / out
// not 16-byte aligned), so callers fall back; cudaErrorInvalidValue for slot < 0, start < 0 or
// start + T > max_ctx; cudaSuccess without a launch for T <= 0.
bool FlashPrefillFits(const AttnShape& shape);
cudaError_t LaunchFlashPrefillAttention(const __half* q, const __half* k_cache, const __half* v_cache, int slot,
                                        int start, int T, const AttnShape& shape, __half* out, cudaStream_t stream);

}  // namespace llama::kernels
