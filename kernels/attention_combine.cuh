// The merge step of flash-decoding, shared by the decode-attention kernels (attention.cu,
// rope_attention.cu). Included by .cu files only.
#pragma once

#include <cuda_fp16.h>

#include <cfloat>
#include <cstddef>

namespace llama::kernels {

// Merges the `splits` partials of one (row, head) starting at partial index `first` into
// out[0, hd) (fp16), with the block's threads. Reads through L2: the partials may have been
// written by other blocks of the same launch.
__device__ __forceinline__ void CombineHead(const float2* partial_ml, const float* partial_acc, size_t first,
                                            int splits, int hd, __half* out) {
  // Unrolled so that the loads of several splits are in flight at once (16 splits at 2048
  // keys: a serial chain of L2 round trips otherwise).
  float mx = -FLT_MAX;
#pragma unroll 8
  for (int sp = 0; sp < splits; ++sp) mx = fmaxf(mx, __ldcg(&partial_ml[first + sp]).x);
  float denom = 0.f;
#pragma unroll 8
  for (int sp = 0; sp < splits; ++sp) {
    const float2 ml = __ldcg(&partial_ml[first + sp]);
    if (ml.y > 0.f) denom += __expf(ml.x - mx) * ml.y;
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float v = 0.f;
#pragma unroll 8
    for (int sp = 0; sp < splits; ++sp) {
      const float2 ml = __ldcg(&partial_ml[first + sp]);
      const float a = __ldcg(&partial_acc[(first + sp) * hd + d]);
      if (ml.y > 0.f) v += __expf(ml.x - mx) * a;
    }
    out[d] = __float2half(v / denom);
  }
}

}  // namespace llama::kernels
