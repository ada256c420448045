// The merge of a (row, head)'s split partials when its split blocks form one thread-block
// cluster (rope_attention.cu, rope_split_attention.cu): no global memory, no arrival counter.
// Included by .cu files only.
#pragma once

#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "kernels/attention.h"

namespace llama::kernels {

// Every block of the cluster calls it (all threads) once its own partial is in its shared
// memory: s_ml (max, sum; sum 0 for an empty split, whose s_acc is never read) and s_acc[hd]
// (unnormalized P.V). The first block merges them into out[0, hd) (fp16), loads of a step all
// in flight (lane r of warp 0 reads rank r's (max, sum), then each thread its dim of 8 ranks
// at a time), with the same operations in the same order as CombineHead
// (attention_common.cuh): both merges give the same bits. The second barrier keeps every
// block's shared memory alive until the first has read it. At most kRopeAttnMaxSplits blocks.
__device__ __forceinline__ void MergeClusterSplits(const float2* s_ml, const float* s_acc, int hd, __half* out) {
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  __shared__ float s_e[kRopeAttnMaxSplits], s_l[kRopeAttnMaxSplits];
  cluster.sync();
  if (cluster.block_rank() == 0) {
    const int n = static_cast<int>(cluster.num_blocks()), lane = threadIdx.x & 31;
    if (threadIdx.x < 32) {
      const float2 ml = lane < n ? *cluster.map_shared_rank(s_ml, lane) : make_float2(-FLT_MAX, 0.f);
      float mx = ml.x;
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      if (lane < n) {
        s_e[lane] = ml.y > 0.f ? __expf(ml.x - mx) : 0.f;  // 0: an empty split
        s_l[lane] = ml.y;
      }
    }
    __syncthreads();
    float denom = 0.f;
    for (int r = 0; r < n; ++r)
      if (s_l[r] > 0.f) denom += s_e[r] * s_l[r];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
      float v = 0.f;
#pragma unroll 1
      for (int r0 = 0; r0 < n; r0 += 8) {
        float a[8];
#pragma unroll
        for (int r = 0; r < 8; ++r) a[r] = r0 + r < n ? cluster.map_shared_rank(s_acc, r0 + r)[d] : 0.f;
#pragma unroll
        for (int r = 0; r < 8; ++r)
          if (r0 + r < n && s_l[r0 + r] > 0.f) v += s_e[r0 + r] * a[r];
      }
      out[d] = __float2half(v / denom);
    }
  }
  cluster.sync();
}

}  // namespace llama::kernels
