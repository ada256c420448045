// The merge of a (row, head)'s split partials when its split blocks form one thread-block
// cluster (rope_attention.cu, rope_split_attention.cu): no global memory, no arrival counter.
// Included by .cu files only.
//
// The partials are pushed, not pulled: every rank but 0 stores its (max, sum) and P.V into
// rank 0's shared memory with st.async, which counts the bytes on rank 0's mbarrier, and
// exits; rank 0 waits on that barrier alone and merges. The barrier is set up at the kernel's
// start (ClusterMergeBegin) and published by the arrive of a cluster barrier whose wait, at
// the merge, finds every block long arrived. Before (session 18), rank 0 pulled the partials
// over distributed shared memory between two cluster barriers, and every block of the cluster
// stayed until the last had passed the second: decode +1.9% on `main`, +2.5% at 2048 context
// (tests/bench/RESULTS.md, session 19). Plain remote stores with a cluster fence and one
// remote arrive per block measured slower; rank 0 spinning on mbarrier.test_wait instead of
// mbarrier.try_wait, the same.
#pragma once

#include <cooperative_groups.h>
#include <cuda/ptx>
#include <cuda_fp16.h>

#include <cfloat>
#include <cstddef>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/launch.h"

namespace llama::kernels {

// Rank 0's receiving end, in every block's dynamic shared memory (only rank 0's is used):
// the barrier, then each rank's (max, sum) and P.V.
struct ClusterMergeScratch {
  uint64_t* bar;
  float2* ml;  // [splits]
  float* acc;  // [splits][hd]
};
__host__ __device__ constexpr size_t ClusterMergeMlBytes(int splits) {
  return (8 * static_cast<size_t>(splits) + 15) & ~static_cast<size_t>(15);
}
__host__ __device__ constexpr size_t ClusterMergeBytes(int splits, int hd) {
  return 16 + ClusterMergeMlBytes(splits) + 4 * static_cast<size_t>(splits) * hd;
}
// p: 16-byte aligned; so is acc (16-byte stores land there).
__device__ __forceinline__ ClusterMergeScratch ClusterMergeAt(unsigned char* p, int splits) {
  return ClusterMergeScratch{reinterpret_cast<uint64_t*>(p), reinterpret_cast<float2*>(p + 16),
                             reinterpret_cast<float*>(p + 16 + ClusterMergeMlBytes(splits))};
}

// Every thread of every block of the cluster, once, at the kernel's start: rank 0's thread 0
// sets up its barrier to expect the other ranks' bytes; the cluster barrier's arrive
// publishes it.
__device__ __forceinline__ void ClusterMergeBegin(const ClusterMergeScratch& cm, int hd) {
  namespace cg = cooperative_groups;
  namespace ptx = cuda::ptx;
  cg::cluster_group cluster = cg::this_cluster();
  if (cluster.block_rank() == 0 && threadIdx.x == 0) {
    const uint32_t bytes = (cluster.num_blocks() - 1) * (8u + 4u * static_cast<uint32_t>(hd));
    ptx::mbarrier_init(cm.bar, 1);
    ptx::fence_mbarrier_init(ptx::sem_release, ptx::scope_cluster);
    ptx::mbarrier_arrive_expect_tx(ptx::sem_release, ptx::scope_cta, ptx::space_shared, cm.bar, bytes);
  }
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
}

// Σ e[r] x[r] over the ranks with l[r] > 0 (a nonempty split), in rank order: the merge's
// denominator (x = l) and each dim's numerator (x = the ranks' P.V).
__device__ __forceinline__ float RankWeightedSum(const float (&e)[kRopeAttnMaxSplits],
                                                 const float (&l)[kRopeAttnMaxSplits],
                                                 const float (&x)[kRopeAttnMaxSplits]) {
  float sum = 0.f;
#pragma unroll
  for (int r = 0; r < kRopeAttnMaxSplits; ++r)
    if (l[r] > 0.f) sum += e[r] * x[r];
  return sum;
}

// Rank 0's side of MergeClusterSplits: waits on its barrier for the other ranks' partials
// (cm_ml / cm_acc), then merges them with its own (s_ml / s_acc) into out[0, hd). Every load
// of a phase is issued at once (the weights and sums of all kRopeAttnMaxSplits ranks, then a
// dim's partials of every rank) before the operations use them, in split order: a loop over
// the ranks and 8-rank rounds that waited for their loads one after another took 560 + 2000
// cycles (session 21).
__device__ __forceinline__ void RankZeroMerge(const float2* s_ml, const float* s_acc, int hd, int n, __half* out,
                                              uint64_t* bar, const float2* cm_ml, const float* cm_acc,
                                              unsigned long long* clk, __half* perm_row, int perm_dst) {
  namespace ptx = cuda::ptx;
  __shared__ float s_e[kRopeAttnMaxSplits], s_l[kRopeAttnMaxSplits];
  while (!ptx::mbarrier_try_wait_parity(ptx::sem_acquire, ptx::scope_cluster, bar, 0u)) {
  }
  if (clk && threadIdx.x == 0) clk[16] = clock64();
  const int lane = threadIdx.x & 31;
  if (threadIdx.x < 32) {
    const float2 ml = lane < n ? (lane == 0 ? *s_ml : cm_ml[lane]) : make_float2(-FLT_MAX, 0.f);
    float mx = ml.x;
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane < n) {
      s_e[lane] = ml.y > 0.f ? __expf(ml.x - mx) : 0.f;  // 0: an empty split
      s_l[lane] = ml.y;
    }
  }
  __syncthreads();
  if (clk && threadIdx.x == 0) clk[17] = clock64();
  float e[kRopeAttnMaxSplits], l[kRopeAttnMaxSplits];  // l 0: past the cluster, or an empty split
#pragma unroll
  for (int r = 0; r < kRopeAttnMaxSplits; ++r) {
    e[r] = r < n ? s_e[r] : 0.f;
    l[r] = r < n ? s_l[r] : 0.f;
  }
  const float denom = RankWeightedSum(e, l, l);
  if (clk && threadIdx.x == 0) clk[18] = clock64();
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a[kRopeAttnMaxSplits];
#pragma unroll
    for (int r = 0; r < kRopeAttnMaxSplits; ++r) a[r] = l[r] > 0.f ? (r == 0 ? s_acc[d] : cm_acc[r * hd + d]) : 0.f;
    (perm_row != nullptr ? perm_row[perm_dst] : out[d]) = __float2half(RankWeightedSum(e, l, a) / denom);
  }
  if (clk && threadIdx.x == 0) clk[19] = clock64();
}

// Every block of the cluster calls it (all threads) once its own partial is in its shared
// memory: s_ml (max, sum; sum 0 for an empty split, whose s_acc is never read) and s_acc[hd]
// (unnormalized P.V). Rank 0 merges them into out[0, hd) (fp16) with the same operations in
// the same order as CombineHead (attention_common.cuh): both merges give the same bits. At
// most kRopeAttnMaxSplits blocks. clk (diagnosis): rank 0's thread 0 records clock64 at
// clk[16] once its barrier completes, then after the weights of the ranks (17), the
// denominator (18) and its dims of the output (19).
// perm_row (the launchers' out_perm; then hd <= blockDim.x): thread d writes dim d to
// perm_row[perm_dst] instead of out[d] (its index loaded early, off the merge's path).
__device__ __forceinline__ void MergeClusterSplits(const float2* s_ml, const float* s_acc, int hd, __half* out,
                                                   const ClusterMergeScratch& cm,
                                                   unsigned long long* clk = nullptr, __half* perm_row = nullptr,
                                                   int perm_dst = 0) {
  namespace cg = cooperative_groups;
  namespace ptx = cuda::ptx;
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank()), n = static_cast<int>(cluster.num_blocks());
  asm volatile("barrier.cluster.wait.aligned;" ::: "memory");  // rank 0's barrier is set up
  __syncthreads();  // the block's partial, written by several threads, is complete
  if (rank != 0) {
    uint64_t* bar = cluster.map_shared_rank(cm.bar, 0);
    float* acc = cluster.map_shared_rank(cm.acc + rank * hd, 0);
    if ((reinterpret_cast<uintptr_t>(s_acc) & 15) == 0 && hd % 4 == 0) {  // 16 bytes per store
      for (int i = threadIdx.x; i < hd / 4; i += blockDim.x) {
        const float4 v = reinterpret_cast<const float4*>(s_acc)[i];
        const float w[4] = {v.x, v.y, v.z, v.w};
        ptx::st_async(acc + 4 * i, w, bar);
      }
    } else {
      for (int d = threadIdx.x; d < hd; d += blockDim.x) ptx::st_async(acc + d, s_acc[d], bar);
    }
    if (threadIdx.x == 0) {
      const float ml[2] = {s_ml->x, s_ml->y};
      ptx::st_async(reinterpret_cast<float*>(cluster.map_shared_rank(cm.ml + rank, 0)), ml, bar);
    }
    return;  // nothing reads this block's shared memory
  }
  RankZeroMerge(s_ml, s_acc, hd, n, out, cm.bar, cm.ml, cm.acc, clk, perm_row, perm_dst);
}

// MergeClusterSplits for a head dimension of one dim a thread (kHd == blockDim.x), with each
// block's partial still in registers: no shared-memory copy of it and no block barrier before
// the push, and rank 0's merge without a phase per kind of value. Every rank but 0 pushes from
// its first kHd / 4 threads, each 4 dims (own[0..3]: dims 4 t .. 4 t + 3; thread 0 also the
// (max, sum) own_ml); rank 0's thread d holds dim d of its own partial in own[0] and its
// (max, sum) in own_ml (every thread). Rank 0 then loads every rank's (max, sum) and its dim of
// every rank's P.V at once and merges them with the same operations in the same order as
// RankZeroMerge and CombineHead (the same bits). An empty split pushes (-FLT_MAX, 0) and any
// P.V (never read). clk: as MergeClusterSplits's (16: barrier complete, 17: loads and weights,
// 18: denominator, 19: output).
template <int kHd>
__device__ __forceinline__ void MergeClusterSplitsHeld(float2 own_ml, const float (&own)[4], __half* out,
                                                       const ClusterMergeScratch& cm, unsigned long long* clk,
                                                       __half* perm_row, int perm_dst) {
  namespace cg = cooperative_groups;
  namespace ptx = cuda::ptx;
  static_assert(kHd % 4 == 0, "16-byte pushes");
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank()), n = static_cast<int>(cluster.num_blocks());
  asm volatile("barrier.cluster.wait.aligned;" ::: "memory");  // rank 0's barrier is set up
  if (rank != 0) {
    if (threadIdx.x < kHd / 4) {
      uint64_t* bar = cluster.map_shared_rank(cm.bar, 0);
      ptx::st_async(cluster.map_shared_rank(cm.acc + rank * kHd + 4 * threadIdx.x, 0), own, bar);
      if (threadIdx.x == 0) {
        const float ml[2] = {own_ml.x, own_ml.y};
        ptx::st_async(reinterpret_cast<float*>(cluster.map_shared_rank(cm.ml + rank, 0)), ml, bar);
      }
    }
    return;
  }
  while (!ptx::mbarrier_try_wait_parity(ptx::sem_acquire, ptx::scope_cluster, cm.bar, 0u)) {
  }
  if (clk && threadIdx.x == 0) clk[16] = clock64();
  const int d = threadIdx.x;
  float m[kRopeAttnMaxSplits], l[kRopeAttnMaxSplits], a[kRopeAttnMaxSplits];  // l 0: empty, or past the cluster
#pragma unroll
  for (int r = 0; r < kRopeAttnMaxSplits; ++r) {
    const float2 ml = r == 0 ? own_ml : r < n ? cm.ml[r] : make_float2(-FLT_MAX, 0.f);
    m[r] = ml.x;
    l[r] = ml.y;
    a[r] = r == 0 ? own[0] : r < n ? cm.acc[r * kHd + d] : 0.f;
  }
  float mx = m[0];
#pragma unroll
  for (int r = 1; r < kRopeAttnMaxSplits; ++r) mx = fmaxf(mx, m[r]);
  float e[kRopeAttnMaxSplits];
#pragma unroll
  for (int r = 0; r < kRopeAttnMaxSplits; ++r) e[r] = l[r] > 0.f ? __expf(m[r] - mx) : 0.f;
  if (clk && threadIdx.x == 0) clk[17] = clock64();
  const float denom = RankWeightedSum(e, l, l);
  if (clk && threadIdx.x == 0) clk[18] = clock64();
  (perm_row != nullptr ? perm_row[perm_dst] : out[d]) = __float2half(RankWeightedSum(e, l, a) / denom);
  if (clk && threadIdx.x == 0) clk[19] = clock64();
}

// The grid's zeroing (`zero`, ZeroSpans of launch.h) by every block but each cluster's rank 0
// (all blocks of one-block clusters), once it has pushed its partial (MergeClusterSplits): off
// the path to the merge. Grid (splits, heads, rows), clusters along x: block (split, h, m).
// Done on the way to the merge, between the loads of q and the rest, it cost ~1000 cycles
// there (session 21).
__device__ __forceinline__ void ZeroByPushedRanks(const ZeroSpans& zero, int split, int h, int m) {
  if (gridDim.x == 1 || split > 0) {
    const int others = gridDim.x > 1 ? gridDim.x - 1 : 1;
    const size_t block = (static_cast<size_t>(m) * gridDim.y + h) * others + (gridDim.x > 1 ? split - 1 : 0);
    const size_t blocks = static_cast<size_t>(others) * gridDim.y * gridDim.z;
    ZeroByGridPart(zero.p[0], zero.n[0], block, blocks);
    ZeroByGridPart(zero.p[1], zero.n[1], block, blocks);
  }
}

}  // namespace llama::kernels
