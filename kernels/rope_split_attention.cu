// One decode step's attention for contexts past the cluster kernel's reach (rope_attention.cu):
// RoPE of the query and the new key, the K/V-cache write of the new position, and
// flash-decoding over `splits` blocks per (row, head), merged in a thread-block cluster (up to
// 16 splits) or through global memory by the last block of each head to finish
// (kernels/attention.h, LaunchRopeSplitAttention).
//
// Each thread holds its rows of a tile of the split's K and V in registers (16 bytes of each
// per row, kRows rows), so that all of a tile's loads are issued at once, the first tile's
// cached rows before the PDL wait in replayed graphs; it keeps an online softmax over its
// rows, and the block merges its row groups once at the end (shuffles, then one barrier).
// The split kernel of attention.cu instead reads K, reduces, then reads V, a few rows per
// thread at a time.
#include <cfloat>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/cluster_merge.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 8;         // rows of K and of V a thread holds at a time (a tile of the split)
constexpr int kMinBlocks = 4;    // blocks per SM: 128 registers, no spill (168 uncapped, 3 per SM)

// Rows r0 + i * par (i < kRows) of the split whose first row is at `first` in the cache,
// those below `n`; the others are zero.
__device__ __forceinline__ void LoadRows(const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
                                         size_t first, size_t row_stride, int r0, int par, int n, uint4 (&kr)[kRows],
                                         uint4 (&vr)[kRows]) {
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    const int r = r0 + i * par;
    kr[i] = vr[i] = make_uint4(0u, 0u, 0u, 0u);
    if (r < n) {
      kr[i] = __ldcs(reinterpret_cast<const uint4*>(k_cache + first + static_cast<size_t>(r) * row_stride));
      vr[i] = __ldcs(reinterpret_cast<const uint4*>(v_cache + first + static_cast<size_t>(r) * row_stride));
    }
  }
}

// Folds the softmax state (mo, lo, ao) into (m, l, a): max, sum of exp(score - max), and
// sum of exp(score - max) * v over the dims held.
__device__ __forceinline__ void MergeState(float& m, float& l, float (&a)[8], float mo, float lo, const float (&ao)[8]) {
  const float mn = fmaxf(m, mo), x = __expf(m - mn), y = __expf(mo - mn);
  l = x * l + y * lo;
#pragma unroll
  for (int j = 0; j < 8; ++j) a[j] = x * a[j] + y * ao[j];
  m = mn;
}

// grid (splits, H, rows), kThreads threads. kCluster: the splits of a (row, head) form one
// thread-block cluster and merge through shared memory (MergeClusterSplits) instead of the
// global partials and the last block's merge. Thread (r0, d0) holds dims d0..d0+7 of the rows
// r0, r0 + par, ... of its split (tpr = hd / 8 threads per row, par = kThreads / tpr rows at a
// time). kCluster: the merge's receiving end (ClusterMergeScratch) in the dynamic shared memory.
// kClock (diagnosis, SetAttentionClock): blocks (split < kRopeAttnMaxSplits, head h <
// kAttnClockHeads, row 0) record into g_split_clock[h][split] (attention.h says what).
// kHd: the head dimension fixed at compile time (128, Llama-2-7B's), else 0 (s.head_dim). Fixed,
// the row-group loops and each row's shuffle reduction unroll (the 8 rows' reductions
// interleave instead of running one after another), and q, the new key and value and the RoPE
// angles are read in 16-byte loads, the angles before the PDL wait (positions_final), q and the
// new key's row together right after it, before the zeroing (session 32). With kCluster, the
// fixed instantiation keeps the block's partial in registers up to the merge
// (MergeClusterSplitsHeld, session 33).
__device__ unsigned long long g_split_clock[kAttnClockHeads][kRopeAttnMaxSplits][kAttnClockSlots];

template <bool kCluster, bool kClock = false, int kHd = 0>
__global__ void __launch_bounds__(kThreads, kMinBlocks) RopeSplitAttentionKernel(
    const float* __restrict__ qkv, int ld_qkv, const float2* __restrict__ table, __half* __restrict__ k_cache,
    __half* __restrict__ v_cache, const int32_t* __restrict__ slots, const int32_t* __restrict__ positions,
    AttnShape s, int split_keys, bool positions_final, float2* __restrict__ partial_ml,
    float* __restrict__ partial_acc, __half* __restrict__ out, uint32_t* __restrict__ arrivals, ZeroSpans zero,
    const int32_t* __restrict__ out_perm) {
  AllowDependents();
  const int split = blockIdx.x, h = blockIdx.y, m = blockIdx.z, splits = gridDim.x;
  unsigned long long* clk =
      kClock && m == 0 && h < kAttnClockHeads && split < kRopeAttnMaxSplits ? g_split_clock[h][split] : nullptr;
  ClockMark(clk, 0);
  TimerMark(clk, 13);
  constexpr bool kVec = kHd > 0 && kHd % 16 == 0;
  // The block's partial stays in registers up to the cluster merge (MergeClusterSplitsHeld).
  constexpr bool kHeld = kCluster && kHd == kThreads;
  const int hd = kHd > 0 ? kHd : s.head_dim, k0 = split * split_keys;
  const int kvh = h / (s.heads / s.kv_heads);
  const int tpr = hd / 8, par = kThreads / tpr;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  const size_t row_stride = static_cast<size_t>(s.kv_heads) * hd;
  ClusterMergeScratch cm{};
  if constexpr (kCluster) {
    extern __shared__ __align__(16) unsigned char merge_smem[];
    cm = ClusterMergeAt(merge_smem, splits);
    ClusterMergeBegin(cm, hd);
  }

  // The cached rows (positions before pos[m]) were written by earlier launches: with the
  // positions final before this kernel starts (a replayed graph), they are loaded before the
  // wait; otherwise an earlier kernel may still be writing slot and pos.
  uint4 kr[kRows], vr[kRows];
  int pos = positions[m];
  // kCluster, out_perm: where this thread's dim of the head goes in the row (read early).
  const int perm_dst = kCluster && out_perm != nullptr && threadIdx.x < hd ? __ldg(out_perm + h * hd + threadIdx.x) : 0;
  size_t first = 0;
  auto load_cached = [&] {  // the first tile into registers
    first = (static_cast<size_t>(slots[m]) * s.max_ctx + k0) * row_stride + static_cast<size_t>(kvh) * hd + d0;
    LoadRows(k_cache, v_cache, first, row_stride, r0, par, min(split_keys, pos - k0), kr, vr);
  };
  const float* row = qkv + static_cast<size_t>(m) * ld_qkv;
  float2 cs[8];  // the RoPE angles of the thread's dims at pos
  if (positions_final) {
    load_cached();
    if constexpr (kVec) RopeAnglesVec(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
  }
  ClockMark(clk, 1);
  WaitForPrerequisites();
  ClockMark(clk, 2);
  TimerMark(clk, 11);
  // Positions not final (an eager launch): pos, the first tile's cached rows and (kVec) the
  // angles are read here, right after the wait, in every instantiation.
  // kVec: q's dims, and in the new key's row group its key's and value's, loaded at once
  // before the zeroing (the new key's loads had waited for q's rotation: its split was the
  // last to the merge in 21-24 of 32 heads, session 32); the rotation partners come from the
  // lane tpr / 2 apart, which loaded them.
  float q[8], kn[8], vn[8];
  if (!positions_final) {
    pos = positions[m];
    load_cached();
    if constexpr (kVec) RopeAnglesVec(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
  }
  if constexpr (kVec) {
    if (k0 <= pos) {
      LoadEightVec(row + h * hd + d0, q);
      const int nk = min(split_keys, pos + 1 - k0), nold = min(nk, pos - k0);
      if (nold < nk && nold % par == r0) {
        LoadEightVec(row + (s.heads + kvh) * hd + d0, kn);
        LoadEightVec(row + (s.heads + s.kv_heads + kvh) * hd + d0, vn);
      }
    }
  }
  ZeroByGrid(zero.p[0], zero.n[0]);
  ZeroByGrid(zero.p[1], zero.n[1]);
  ClockMark(clk, 3);
  const size_t part = (static_cast<size_t>(m) * s.heads + h) * splits + split;
  __shared__ float2 s_ml;                 // kCluster: the block's partial
  __shared__ __align__(16) float s_acc[kMaxHeadDim];
  float2 own_ml = make_float2(-FLT_MAX, 0.f);  // kHeld: the block's partial (MergeClusterSplitsHeld)
  float own[4] = {0.f, 0.f, 0.f, 0.f};
  if (k0 > pos) {  // past this row's keys: an empty partial (kHeld: own_ml as initialized)
    if (kCluster && !kHeld) {
      if (threadIdx.x == 0) s_ml = make_float2(-FLT_MAX, 0.f);
    } else if (!kCluster) {
      if (threadIdx.x == 0) partial_ml[part] = make_float2(-FLT_MAX, 0.f);
      for (int d = threadIdx.x; d < hd; d += kThreads) partial_acc[part * hd + d] = 0.f;
    }
  } else {
    // nk keys, the last of them (row nold) the new one when the split holds pos.
    const int nk = min(split_keys, pos + 1 - k0), nold = min(nk, pos - k0);
    float qf[8];
    if constexpr (kVec) {
      float qp[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) qp[j] = __shfl_xor_sync(0xffffffffu, q[j], tpr / 2);
      RopePairs(q, qp, d0, hd, cs, qf);
    } else {
      RopeAngles(d0, hd, table + static_cast<size_t>(pos) * (hd / 2), cs);
      RopeEightWith(row + h * hd, d0, hd, cs, qf);
    }
    const float scale = rsqrtf(static_cast<float>(hd));
#pragma unroll
    for (int j = 0; j < 8; ++j) qf[j] *= scale;
    ClockMark(clk, 4);
    // The threads of the new key's row (row group nold % par) rotate it and store it.
    uint4 knew = make_uint4(0u, 0u, 0u, 0u), vnew = knew;
    float knp[8];  // kVec: the new key's rotation partners (every lane shuffles; the row group's use them)
    if constexpr (kVec)
#pragma unroll
      for (int j = 0; j < 8; ++j) knp[j] = __shfl_xor_sync(0xffffffffu, kn[j], tpr / 2);
    if (nold < nk && nold % par == r0) {
      float kf[8], vf[8];
      if constexpr (kVec) {
        RopePairs(kn, knp, d0, hd, cs, kf);
#pragma unroll
        for (int j = 0; j < 8; ++j) vf[j] = vn[j];
      } else {
        RopeEightWith(row + (s.heads + kvh) * hd, d0, hd, cs, kf);
        const float* v = row + (s.heads + s.kv_heads + kvh) * hd + d0;
#pragma unroll
        for (int j = 0; j < 8; ++j) vf[j] = v[j];
      }
      knew = PackEight(kf);
      vnew = PackEight(vf);
      if (h % (s.heads / s.kv_heads) == 0) {  // one block per kv head writes the cache
        *reinterpret_cast<uint4*>(k_cache + first + static_cast<size_t>(nold) * row_stride) = knew;
        *reinterpret_cast<uint4*>(v_cache + first + static_cast<size_t>(nold) * row_stride) = vnew;
      }
    }
    ClockMark(clk, 5);

    // Online softmax over the thread's rows, a tile of kRows at a time: tile row r0 + i * par
    // (split row t0 + r0 + i * par) in kr[i], vr[i]; the next tile's loads go out as soon as
    // this one's rows are used.
    const int tile = kRows * par;
    float mx = -FLT_MAX, sum = 0.f, acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int t0 = 0; t0 < nk; t0 += tile) {
      float sc[kRows];
      float tmx = mx;
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        const int r = t0 + r0 + i * par;
        if (r == nold) {  // the new key (past the keys, masked, when the split does not hold it)
          kr[i] = knew;
          vr[i] = vnew;
        }
        float dot = DotEight(qf, kr[i]);
        for (int o = tpr / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        sc[i] = dot;
        if (r < nk) tmx = fmaxf(tmx, dot);
      }
      const float c = __expf(mx - tmx);
      sum *= c;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] *= c;
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        const float e = t0 + r0 + i * par < nk ? __expf(sc[i] - tmx) : 0.f;
        sum += e;
        AxpyEight(e, vr[i], acc);
      }
      mx = tmx;
      if (t0 + tile < nk)
        LoadRows(k_cache, v_cache, first + static_cast<size_t>(t0 + tile) * row_stride, row_stride, r0, par,
                 nold - t0 - tile, kr, vr);
    }
    ClockMark(clk, 6);

    // The row groups of a warp (lanes tpr apart), then the warps through shared memory.
    for (int o = tpr; o < 32; o <<= 1) {
      float ao[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) ao[j] = __shfl_xor_sync(0xffffffffu, acc[j], o);
      MergeState(mx, sum, acc, __shfl_xor_sync(0xffffffffu, mx, o), __shfl_xor_sync(0xffffffffu, sum, o), ao);
    }
    ClockMark(clk, 7);
    __shared__ float w_ml[kWarps][2];
    __shared__ __align__(kHeld ? 16 : 4) float w_acc[kWarps][kMaxHeadDim];  // kHeld: 16-byte reads
    if (lane < tpr)
#pragma unroll
      for (int j = 0; j < 8; ++j) w_acc[warp][d0 + j] = acc[j];
    if (lane == 0) {
      w_ml[warp][0] = mx;
      w_ml[warp][1] = sum;
    }
    __syncthreads();
    float bm = w_ml[0][0];
    for (int w = 1; w < kWarps; ++w) bm = fmaxf(bm, w_ml[w][0]);
    float ew[kWarps];
    for (int w = 0; w < kWarps; ++w) ew[w] = __expf(w_ml[w][0] - bm);  // warp 0 holds row 0: bm is finite
    auto block_sum = [&] {  // the block's sum of exp(score - bm)
      float l = 0.f;
      for (int w = 0; w < kWarps; ++w) l += ew[w] * w_ml[w][1];
      return l;
    };
    auto block_dim = [&](int d) {  // the block's P.V at dim d
      float v = 0.f;
      for (int w = 0; w < kWarps; ++w) v += ew[w] * w_acc[w][d];
      return v;
    };
    if constexpr (kHeld) {
      // Rank 0: every thread its dim and the (max, sum); the others: 4 dims a thread of the
      // first kHd / 4 (the same operations, in the same order, as block_dim).
      own_ml = make_float2(bm, block_sum());
      if (split == 0) {
        own[0] = block_dim(threadIdx.x);
      } else if (threadIdx.x < kHd / 4) {
        for (int w = 0; w < kWarps; ++w) {
          const float4 a = reinterpret_cast<const float4*>(w_acc[w])[threadIdx.x];
          own[0] += ew[w] * a.x;
          own[1] += ew[w] * a.y;
          own[2] += ew[w] * a.z;
          own[3] += ew[w] * a.w;
        }
      }
    } else {
      for (int d = threadIdx.x; d < hd; d += kThreads) {
        const float v = block_dim(d);
        if (kCluster)
          s_acc[d] = v;
        else
          partial_acc[part * hd + d] = v;
      }
      if (threadIdx.x == 0) {
        const float l = block_sum();
        if (kCluster)
          s_ml = make_float2(bm, l);
        else
          partial_ml[part] = make_float2(bm, l);
      }
    }
    ClockMark(clk, 8);
  }
  ClockMark(clk, 9);
  if constexpr (kHeld) {
    MergeClusterSplitsHeld<kHd>(own_ml, own, out + (static_cast<size_t>(m) * s.heads + h) * hd, cm, clk,
                                out_perm != nullptr ? out + static_cast<size_t>(m) * s.heads * hd : nullptr, perm_dst);
  } else if constexpr (kCluster) {
    MergeClusterSplits(&s_ml, s_acc, hd, out + (static_cast<size_t>(m) * s.heads + h) * hd, cm, clk,
                       out_perm != nullptr ? out + static_cast<size_t>(m) * s.heads * hd : nullptr, perm_dst);
  } else {
    CombineIfLastSplit(partial_ml, partial_acc, arrivals, m, h, s.heads, splits, hd, out);
  }
  ClockMark(clk, 10);
  TimerMark(clk, 12);
  if (clk && threadIdx.x == 0) {
    clk[14] = splits;
    clk[15] = k0 <= pos && pos < k0 + split_keys;  // this split holds the new key
  }
}

}  // namespace

cudaError_t LaunchRopeSplitAttention(const float* qkv, int ld_qkv, const float2* rope_table, __half* k_cache,
                                     __half* v_cache, const int32_t* slot, const int32_t* pos, const AttnShape& shape,
                                     int rows, int splits, int split_keys, bool positions_final, float2* partial_ml,
                                     float* partial_acc, __half* out, uint32_t* arrivals, cudaStream_t stream,
                                     ZeroSpans zero, bool cluster, const int32_t* out_perm) {
  if (rows <= 0) return cudaSuccess;
  if (out_perm != nullptr && (!cluster || shape.head_dim > kThreads)) return cudaErrorInvalidValue;
  const int tpr = shape.head_dim / 8;
  if (!out || split_keys < 1 || splits < 1 || shape.head_dim < 8 || shape.head_dim % 8 != 0 || (tpr & (tpr - 1)) != 0 ||
      shape.head_dim > kMaxHeadDim || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0)
    return cudaErrorInvalidValue;
  if (cluster ? splits > kRopeAttnMaxSplits : !partial_ml || !partial_acc || !arrivals) return cudaErrorInvalidValue;
  if (cluster) {  // once per process and instantiation: 16-block clusters are non-portable
    auto allow = [](auto kernel) {
      return cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    };
    static const cudaError_t errors[] = {
        allow(RopeSplitAttentionKernel<true>), allow(RopeSplitAttentionKernel<true, true>),
        allow(RopeSplitAttentionKernel<true, false, 128>), allow(RopeSplitAttentionKernel<true, true, 128>)};
    for (const cudaError_t e : errors)
      if (e != cudaSuccess) return e;
  }
  const bool clock = AttentionClockOn();
  if (clock) NoteClockedSplitLaunch();
  // Llama-2's head dimension takes the instantiation with it fixed (kHd); 16-byte alignment of
  // q|k|v's rows and of the RoPE table's is what its vector loads need.
  const bool fixed = shape.head_dim == 128 && ld_qkv % 4 == 0 && (reinterpret_cast<uintptr_t>(qkv) & 15) == 0 &&
                     (reinterpret_cast<uintptr_t>(rope_table) & 15) == 0;
  auto pick = [&](auto plain, auto clocked) { return clock ? clocked : plain; };
  auto kernel = fixed ? (cluster ? pick(RopeSplitAttentionKernel<true, false, 128>, RopeSplitAttentionKernel<true, true, 128>)
                                 : pick(RopeSplitAttentionKernel<false, false, 128>,
                                        RopeSplitAttentionKernel<false, true, 128>))
                      : (cluster ? pick(RopeSplitAttentionKernel<true>, RopeSplitAttentionKernel<true, true>)
                                 : pick(RopeSplitAttentionKernel<false>, RopeSplitAttentionKernel<false, true>));
  return LaunchClusters(kernel,
                        dim3(splits, shape.heads, rows), dim3(kThreads),
                        cluster ? ClusterMergeBytes(splits, shape.head_dim) : 0, stream, cluster ? splits : 0, qkv, ld_qkv,
                        rope_table, k_cache, v_cache, slot, pos, shape, split_keys, positions_final, partial_ml,
                        partial_acc, out, arrivals, zero, out_perm);
}

std::vector<uint64_t> ReadSplitAttentionClock() { return ReadClockBuffer(g_split_clock); }

}  // namespace llama::kernels
