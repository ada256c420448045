// Streaming GPTQ GEMV for decode (M <= kGemvStreamMaxRows rows), tensor-core layout only
// (kernels/README.md). Why: the split-K kernels of gptq_matmul.cu load each block's 32 KB of
// weights once, then spend the block's life in the prologue and reduction while memory idles;
// here a fixed grid of blocks_per_sm x SMs persistent blocks streams the whole matrix.
//
// Work: the matrix is a sequence of 16-column x 64-row tiles of 512 bytes (32 lanes x one
// 16-byte load), tile-major along K exactly as stored, so each warp takes one contiguous run
// of tiles (stream-K: a run may end mid-column-tile and cross into the next; partial column
// sums go out with atomicAdd). Per warp: `Ring` loads of 16 bytes per lane in flight in
// registers, and lane 0 asks the copy engine to prefetch the run `l2_prefetch` tiles ahead
// into L2 (cp.async.bulk.prefetch). Before the PDL wait a block issues its first loads,
// stages the k-tile -> group map and each warp's scales/zeros in shared memory; after it, the
// block computes the whole input x (RMSNorm / SwiGLU / plain, act-order permuted) once.
// Fused projections: blocks are divided among segments by their share of tiles, each block
// serving one segment (so it stages x with that segment's permutation only).
#include <algorithm>
#include <mutex>

#include "kernels/gemv_common.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using namespace gemv;

constexpr int kTileBytes = 512;           // one 16 x 64 tile: 32 lanes x 16 bytes
constexpr size_t kMaxSmem = 200 * 1024;   // dynamic shared memory we allow per block (sm_90 opt-in: 227 KB)

std::mutex tuning_mu;
GemvTuning tuning;

struct StreamPlan {
  int groups = 0;                  // rows of scales / zeros
  int recs = 0;                    // (column tile, group) records staged per warp
  int l2_prefetch = 0;             // tiles
  int block0[kMaxSegments + 1];    // blocks [block0[s], block0[s + 1]) serve segment s
};

__device__ __forceinline__ void PrefetchL2(const void* p, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

// Dynamic shared memory of one block (byte offsets, 16-byte aligned).
struct SmemLayout {
  size_t xs, kt_group, perm, norm, recs, bytes;
  __host__ __device__ SmemLayout(int M, int K, int recs_per_warp, bool rms_norm) {
    auto up = [](size_t b) { return (b + 15) / 16 * 16; };
    xs = 0;
    kt_group = up(static_cast<size_t>(M) * K * 2);
    perm = kt_group + up(static_cast<size_t>(K / 16) * 2);
    norm = perm + up(static_cast<size_t>(K) * 2);
    recs = norm + (rms_norm ? up(static_cast<size_t>(K) * 4) : 0);
    bytes = recs + static_cast<size_t>(kWarps) * recs_per_warp * 16 * 4;
  }
};

// Before the PDL wait (immutable inputs): the segment's permutation as uint16 and, for
// RMSNorm, the norm weight gathered through it.
__device__ __forceinline__ void StageWeights(const GemvInput& in, int K, const int32_t* perm, uint16_t* sperm,
                                             float* snw) {
  for (int k = threadIdx.x; k < K; k += kThreads) {
    const int src = perm ? __ldg(perm + k) : k;
    if (perm) sperm[k] = static_cast<uint16_t>(src);
    if (in.kind == GemvSource::kRmsNorm) snw[k] = __ldg(in.norm_weight + src);
  }
}

// After the wait: xs[m][k] = input value at perm[k] for every k, with many loads in flight
// per thread (the prologue is on the critical path of every GEMV). Ends with a barrier.
template <int M>
__device__ __forceinline__ void StageX(const GemvInput& in, int K, const uint16_t* sperm, const float* snw,
                                       float* red, float* inv_rms, __half* xs) {
  constexpr int U = 8;
  const int tid = threadIdx.x;
  if (in.kind == GemvSource::kRmsNorm) {
    BlockInvRms<M>(in, K, red, inv_rms);
    for (int m = 0; m < M; ++m) {
      const float* row = in.src + static_cast<size_t>(m) * K;
      const float inv = inv_rms[m];
      for (int base = tid; base < K; base += kThreads * 2 * U) {
        float v[2 * U];
#pragma unroll
        for (int u = 0; u < 2 * U; ++u) {
          const int k = base + u * kThreads;
          v[u] = k < K ? row[sperm ? sperm[k] : k] : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 2 * U; ++u) {
          const int k = base + u * kThreads;
          if (k < K) xs[static_cast<size_t>(m) * K + k] = __float2half(v[u] * inv * snw[k]);
        }
      }
    }
  } else if (in.kind == GemvSource::kSwiGlu) {
    for (int m = 0; m < M; ++m) {
      const float* row = in.src + static_cast<size_t>(m) * 2 * K;
      for (int base = tid; base < K; base += kThreads * U) {
        float gv[U], uv[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int k = base + u * kThreads;
          const int src = k < K ? (sperm ? sperm[k] : k) : 0;
          gv[u] = row[src];
          uv[u] = row[K + src];
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int k = base + u * kThreads;
          if (k < K) xs[static_cast<size_t>(m) * K + k] = __float2half(gv[u] / (1.f + expf(-gv[u])) * uv[u]);
        }
      }
    }
  } else if (in.kind == GemvSource::kHalf) {
    for (int m = 0; m < M; ++m) {
      const __half* row = in.x + static_cast<size_t>(m) * in.ldx;
      for (int base = tid; base < K; base += kThreads * 2 * U) {
        __half v[2 * U];
#pragma unroll
        for (int u = 0; u < 2 * U; ++u) {
          const int k = base + u * kThreads;
          v[u] = row[k < K ? (sperm ? sperm[k] : k) : 0];
        }
#pragma unroll
        for (int u = 0; u < 2 * U; ++u) {
          const int k = base + u * kThreads;
          if (k < K) xs[static_cast<size_t>(m) * K + k] = v[u];
        }
      }
    }
  } else {  // kAttention: the generic (slow) path; the engine combines in the attention kernel
    for (int m = 0; m < M; ++m)
      for (int k = tid; k < K; k += kThreads)
        xs[static_cast<size_t>(m) * K + k] = InputValue(in, K, m, sperm ? sperm[k] : k, 1.f, nullptr);
  }
  __syncthreads();
}

template <int M, int Ring>
__global__ void __launch_bounds__(kThreads, 3) GptqGemvStreamKernel(GptqMatrix w, GemvInput in,
                                                                     float* __restrict__ out, int ldo, StreamPlan p) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float red[kWarps];
  __shared__ float inv_rms[M];
  const int K = w.K, kbc = K / 64;
  const SmemLayout lay(M, K, p.recs, in.kind == GemvSource::kRmsNorm);
  __half* xs = reinterpret_cast<__half*>(smem + lay.xs);                 // [M][K] x, permuted
  uint16_t* kt_group = reinterpret_cast<uint16_t*>(smem + lay.kt_group);  // [K / 16]
  uint16_t* sperm = reinterpret_cast<uint16_t*>(smem + lay.perm);         // [K] segment perm
  float* snw = reinterpret_cast<float*>(smem + lay.norm);                 // [K] norm weight, permuted
  uint32_t* recs = reinterpret_cast<uint32_t*>(smem + lay.recs);          // [kWarps][p.recs][16]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;

  // This block's segment, and this warp's run of tiles [u_begin, u_end) (global tile index).
  GptqSegment seg = w.seg[0];
  int b_first = 0, b_end = p.block0[1];
#pragma unroll
  for (int i = 1; i < kMaxSegments; ++i)
    if (i < w.num_segments && static_cast<int>(blockIdx.x) >= p.block0[i]) {
      seg = w.seg[i];
      b_first = p.block0[i];
      b_end = p.block0[i + 1];
    }
  const int units = (seg.n_end - seg.n_begin) / 16 * kbc, unit0 = seg.n_begin / 16 * kbc;
  const int n_warps = (b_end - b_first) * kWarps;
  const int wi = (static_cast<int>(blockIdx.x) - b_first) * kWarps + warp;
  const int u_begin = unit0 + static_cast<int>(static_cast<long long>(units) * wi / n_warps);
  const int u_end = unit0 + static_cast<int>(static_cast<long long>(units) * (wi + 1) / n_warps);

  // Weights do not depend on earlier kernels: start streaming them before the PDL wait.
  const uint4* qt = reinterpret_cast<const uint4*>(w.qtiles);
  uint4 buf[Ring];
#pragma unroll
  for (int j = 0; j < Ring; ++j)
    if (u_begin + j < u_end) buf[j] = __ldcs(qt + static_cast<size_t>(u_begin + j) * 32 + lane);
  if (p.l2_prefetch > 0 && lane == 0 && u_begin + Ring < u_end)
    PrefetchL2(qt + static_cast<size_t>(u_begin + Ring) * 32,
               static_cast<uint32_t>(min(p.l2_prefetch, u_end - u_begin - Ring)) * kTileBytes);
  for (int kt = tid; kt < K / 16; kt += kThreads) kt_group[kt] = seg.word_group[kt * 2];
  StageWeights(in, K, seg.perm, sperm, snw);
  // Records r = tile * groups + group over the run are contiguous; each is 16 columns of
  // (fp16 scale bits | zero << 16).
  uint32_t* my = recs + static_cast<size_t>(warp) * p.recs * 16;
  int r_first = 0;
  if (u_begin < u_end) {
    const int nt_a = u_begin / kbc, nt_b = (u_end - 1) / kbc;
    r_first = nt_a * p.groups + seg.word_group[(u_begin - nt_a * kbc) * 8];
    const int r_last = nt_b * p.groups + seg.word_group[(u_end - 1 - nt_b * kbc) * 8 + 7];
    for (int i = lane; i < (r_last - r_first + 1) * 16; i += 32) {
      const int r = r_first + (i >> 4), nt = r / p.groups, gr = r - nt * p.groups;
      const size_t at = static_cast<size_t>(gr) * w.N + nt * 16 + (i & 15);
      my[i] = __half_as_ushort(w.scales[at]) | (static_cast<uint32_t>(w.zeros[at]) << 16);
    }
  }
  AllowDependents();
  WaitForPrerequisites();

  StageX<M>(in, K, seg.perm ? sperm : nullptr, snw, red, inv_rms, xs);
  if (u_begin >= u_end) return;

  const __half* xrow = xs + static_cast<size_t>(g < M ? g : M - 1) * K;  // batch column g of B
  int nt = u_begin / kbc, kb = u_begin - nt * kbc;
  MmaTileAccumulator t_acc;
  int cur_g = -1;
  for (int u = u_begin; u < u_end; u += Ring) {
#pragma unroll
    for (int j = 0; j < Ring; ++j) {
      const int uu = u + j;
      if (uu < u_end) {
        const uint4 qv = buf[j];
        if (uu + Ring < u_end) buf[j] = __ldcs(qt + static_cast<size_t>(uu + Ring) * 32 + lane);
        if (p.l2_prefetch > 0 && lane == 0 && uu + Ring + p.l2_prefetch < u_end)
          PrefetchL2(qt + static_cast<size_t>(uu + Ring + p.l2_prefetch) * 32, kTileBytes);
        const uint32_t words[4] = {qv.x, qv.y, qv.z, qv.w};
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int kt = kb * 4 + c;
          const int grp = kt_group[kt];
          if (grp != cur_g) {
            if (cur_g >= 0) t_acc.CloseGroup();
            cur_g = grp;
            const int r = (nt * p.groups + grp - r_first) * 16;
            const uint32_t ra = my[r + g], rb = my[r + g + 8];
            t_acc.SetGroup(__half2float(__ushort_as_half(static_cast<unsigned short>(ra & 0xffffu))),
                           __half2float(__ushort_as_half(static_cast<unsigned short>(rb & 0xffffu))), ra >> 16,
                           rb >> 16);
          }
          t_acc.Add(c & 1, words[c], *reinterpret_cast<const uint32_t*>(xrow + kt * 16 + 2 * t),
                    *reinterpret_cast<const uint32_t*>(xrow + kt * 16 + 2 * t + 8));
        }
        if (++kb == kbc) {  // column tile complete
          t_acc.CloseGroup();
          cur_g = -1;
          t_acc.Store(out, ldo, M, nt * 16 + g, t);
          kb = 0;
          ++nt;
        }
      }
    }
  }
  if (kb != 0) {
    t_acc.CloseGroup();
    t_acc.Store(out, ldo, M, nt * 16 + g, t);
  }
}

template <int M, int Ring>
cudaError_t LaunchStream(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, const StreamPlan& p,
                         int blocks, size_t smem, cudaStream_t stream) {
  if (smem > 48 * 1024) {  // opt in above the default limit (a host-side attribute, fine while capturing)
    const cudaError_t attr = cudaFuncSetAttribute(GptqGemvStreamKernel<M, Ring>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (attr != cudaSuccess) return attr;
  }
  return Launch(GptqGemvStreamKernel<M, Ring>, dim3(blocks), dim3(kThreads), smem, stream, w, in, out, ldo, p);
}

}  // namespace

void SetGemvTuning(const GemvTuning& t) {
  std::lock_guard<std::mutex> lock(tuning_mu);
  tuning = t;
}

GemvTuning GetGemvTuning() {
  std::lock_guard<std::mutex> lock(tuning_mu);
  return tuning;
}

namespace gemv {

cudaError_t LaunchGptqGemvStream(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, int M,
                                 const GemvTuning& tu, cudaStream_t stream) {
  if (!tu.stream || !w.qtiles || M < 1 || M > kGemvStreamMaxRows || w.K % 64 != 0 || w.num_groups < 1 ||
      w.min_group_rows < 16)
    return cudaErrorNotSupported;
  const int kbc = w.K / 64;
  int units[kMaxSegments];
  long long total = 0;
  for (int i = 0; i < w.num_segments; ++i) {
    const GptqSegment& sg = w.seg[i];
    if (sg.n_begin % 16 != 0 || sg.n_end % 16 != 0 || sg.n_end <= sg.n_begin) return cudaErrorNotSupported;
    units[i] = (sg.n_end - sg.n_begin) / 16 * kbc;
    total += units[i];
  }
  const int sms = SmCount();
  if (sms <= 0) return cudaErrorNotSupported;
  const int target = std::max(1, tu.blocks_per_sm) * sms;
  StreamPlan p;
  p.groups = w.num_groups;
  p.l2_prefetch = std::max(0, tu.l2_prefetch);
  p.block0[0] = 0;
  int most_units = 0;  // per warp
  for (int i = 0; i < kMaxSegments; ++i) {
    int nb = 0;
    if (i < w.num_segments) {
      nb = static_cast<int>((static_cast<long long>(target) * units[i] + total / 2) / total);
      nb = std::clamp(nb, 1, (units[i] + kWarps - 1) / kWarps);
      most_units = std::max(most_units, (units[i] + nb * kWarps - 1) / (nb * kWarps));
    }
    p.block0[i + 1] = p.block0[i] + nb;
  }
  // A run of R rows touches at most R / min_group_rows + (column tiles touched) records.
  p.recs = (most_units * 64 + w.min_group_rows - 1) / w.min_group_rows + (most_units + kbc - 1) / kbc + 1;
  const size_t smem = SmemLayout(M, w.K, p.recs, in.kind == GemvSource::kRmsNorm).bytes;
  if (smem > kMaxSmem || w.K > 65536) return cudaErrorNotSupported;  // perm staged as uint16
  const int blocks = p.block0[w.num_segments];
  const bool deep = tu.ring_deep;
  switch (M) {
    case 1: return deep ? LaunchStream<1, 8>(w, in, out, ldo, p, blocks, smem, stream)
                        : LaunchStream<1, 4>(w, in, out, ldo, p, blocks, smem, stream);
    case 2: return deep ? LaunchStream<2, 8>(w, in, out, ldo, p, blocks, smem, stream)
                        : LaunchStream<2, 4>(w, in, out, ldo, p, blocks, smem, stream);
    case 3: return deep ? LaunchStream<3, 8>(w, in, out, ldo, p, blocks, smem, stream)
                        : LaunchStream<3, 4>(w, in, out, ldo, p, blocks, smem, stream);
    default: return deep ? LaunchStream<4, 8>(w, in, out, ldo, p, blocks, smem, stream)
                         : LaunchStream<4, 4>(w, in, out, ldo, p, blocks, smem, stream);
  }
}

}  // namespace gemv
}  // namespace llama::kernels
