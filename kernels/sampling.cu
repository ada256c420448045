#include "kernels/sampling.h"

#include "kernels/launch.h"
#include "kernels/sample_uniform.h"

#include <cfloat>
#include <climits>

namespace llama::kernels {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ void Better(float v, int i, float& bv, int& bi) {
  if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
}

__device__ int BlockArgmax(const float* __restrict__ row, int vocab) {
  float bv = -FLT_MAX;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += kThreads) Better(row[i], i, bv, bi);
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    Better(ov, oi, bv, bi);
  }
  __shared__ float sv[32];
  __shared__ int si[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    bv = sv[lane];
    bi = si[lane];
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      Better(ov, oi, bv, bi);
    }
  }
  return bi == 0x7fffffff ? 0 : bi;  // valid in thread 0; all-NaN logits give 0, never an id past the vocab
}

__global__ void ArgmaxKernel(const float* __restrict__ logits, int vocab, int ld, int32_t* __restrict__ out) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits + static_cast<size_t>(blockIdx.x) * ld, vocab);
  if (threadIdx.x == 0) out[blockIdx.x] = best;
}

__global__ void GreedyAdvanceKernel(const float* __restrict__ logits, int vocab, int32_t* token, int32_t* pos,
                                    int32_t* history, int32_t* step) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits, vocab);
  if (threadIdx.x == 0) {
    history[*step] = best;
    *step += 1;
    token[0] = best;
    pos[0] += 1;
  }
}

__global__ void ArgmaxAdvanceKernel(const float* __restrict__ logits, int vocab, int ld, int32_t* token,
                                    int32_t* pos) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits + static_cast<size_t>(blockIdx.x) * ld, vocab);
  if (threadIdx.x == 0) {
    token[blockIdx.x] = best;
    pos[blockIdx.x] += 1;
  }
}


// ---------------------------------------------------------------- sampling (LaunchSampleAdvance)
// The rule of engine/sampler.h without a sort: the top-k and top-p cuts are found by bisection
// over the row's float values, each pass one block-wide sum (counts, or weights in double) of
// the candidates above the midpoint, the interval snapped to the nearest values on either side;
// a cut inside a run of equal values is then placed by id (lower ids first). The draw is an
// exclusive scan of the kept weights over contiguous id chunks, one per thread.

constexpr int kSmemRowMax = 51200;  // floats of a row staged in shared memory (200 KB)

// kept: x > v, or x == v and id <= id.
struct Cut {
  float v;
  int id;
};
__device__ __forceinline__ bool InCut(float x, int i, Cut c) { return x > c.v || (x == c.v && i <= c.id); }

struct SelectShared {
  double sum[32];
  float hi[32], lo[32];
  int choice;
};

// Block-wide (sum, max, min), the same bits in every thread (each step adds commutative pairs).
__device__ void BlockReduce(double& sum, float& mx, float& mn, SelectShared& sh) {
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  if (lane == 0) {
    sh.sum[warp] = sum;
    sh.hi[warp] = mx;
    sh.lo[warp] = mn;
  }
  __syncthreads();
  sum = lane < warps ? sh.sum[lane] : 0.0;
  mx = lane < warps ? sh.hi[lane] : -INFINITY;
  mn = lane < warps ? sh.lo[lane] : INFINITY;
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
  }
  __syncthreads();
}

struct Weights {
  double mx, inv_t;
  __device__ double operator()(float x) const { return exp((static_cast<double>(x) - mx) * inv_t); }
};

// The cut where the measure (1 per candidate, or its weight with kMass) of the candidates in
// descending order (ties: lower id first) first reaches target: the largest value v with
// M(>= v) >= target, then as many of the ties at v as reach it. Invariant: M(>= lo) >= target >
// M(>= hi) = m_hi.
template <bool kMass>
__device__ Cut FindCut(const float* row, int vocab, Cut cand, float lo, float hi, double target, Weights w,
                       SelectShared& sh) {
  double m_hi = 0.0;
  while (nextafterf(lo, INFINITY) < hi) {
    float mid = 0.5f * lo + 0.5f * hi;
    if (!(mid > lo && mid < hi)) mid = nextafterf(lo, INFINITY);
    double sum = 0.0;
    float below = -INFINITY, above = INFINITY;  // nearest candidate values under / from mid
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = row[i];
      if (!(x >= lo && x < hi) || !InCut(x, i, cand)) continue;
      if (x >= mid) {
        sum += kMass ? w(x) : 1.0;
        above = fminf(above, x);
      } else {
        below = fmaxf(below, x);
      }
    }
    BlockReduce(sum, below, above, sh);
    if (m_hi + sum >= target) {
      lo = above;  // nothing in [mid, above)
    } else {
      m_hi += sum;
      hi = below > -INFINITY ? nextafterf(below, INFINITY) : mid;  // nothing in [below + ulp, mid)
    }
  }
  // The ties at lo: how many are kept, and the id of the last one kept.
  double ties = 0.0;
  float unused_hi = -INFINITY, unused_lo = INFINITY;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    if (row[i] == lo && InCut(lo, i, cand)) ties += 1.0;
  BlockReduce(ties, unused_hi, unused_lo, sh);
  const double each = kMass ? w(lo) : 1.0;
  double keep = ties;
  if (each > 0.0) {
    keep = fmin(ties, fmax(1.0, ceil((target - m_hi) / each)));
    while (keep > 1.0 && m_hi + (keep - 1.0) * each >= target) keep -= 1.0;
    while (keep < ties && m_hi + keep * each < target) keep += 1.0;
  }
  if (keep >= ties) return Cut{lo, INT_MAX};
  int a = -1, b = vocab - 1;  // ties with id <= a: fewer than keep; with id <= b: at least keep
  while (b - a > 1) {
    const int m = a + (b - a) / 2;
    double n = 0.0;
    float uh = -INFINITY, ul = INFINITY;
    for (int i = threadIdx.x; i <= m; i += blockDim.x)
      if (row[i] == lo && InCut(lo, i, cand)) n += 1.0;
    BlockReduce(n, uh, ul, sh);
    if (n >= keep) b = m; else a = m;
  }
  return Cut{lo, b};
}

// The kept id the inverse CDF gives for u, in ascending id order: thread t owns ids
// [t * per, (t + 1) * per).
__device__ int DrawKept(const float* row, int vocab, Cut top_k, Cut top_p, Weights w, double u, SelectShared& sh) {
  const int per = (vocab + blockDim.x - 1) / blockDim.x;
  const int b0 = min(vocab, static_cast<int>(threadIdx.x) * per), b1 = min(vocab, b0 + per);
  double local = 0.0;
  int last = -1;
  for (int i = b0; i < b1; ++i) {
    const float x = row[i];
    if (InCut(x, i, top_k) && InCut(x, i, top_p)) {
      local += w(x);
      last = i;
    }
  }
  // Exclusive scan of `local` over the threads.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  double incl = local;
  for (int o = 1; o < 32; o <<= 1) {
    const double y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  double excl = __shfl_up_sync(0xffffffffu, incl, 1);
  if (lane == 0) excl = 0.0;
  if (lane == 31) sh.sum[warp] = incl;
  if (threadIdx.x == 0) sh.choice = INT_MAX;
  __syncthreads();
  if (warp == 0) {
    double t = lane < warps ? sh.sum[lane] : 0.0;
    for (int o = 1; o < 32; o <<= 1) {
      const double y = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += y;
    }
    sh.sum[lane] = t;  // inclusive over warps
  }
  __syncthreads();
  const double prefix = (warp > 0 ? sh.sum[warp - 1] : 0.0) + excl;
  const double target = u * sh.sum[warps - 1] - prefix;
  if (target >= 0.0 && target < local) {
    double run = 0.0;
    for (int i = b0; i < b1; ++i) {
      const float x = row[i];
      if (!InCut(x, i, top_k) || !InCut(x, i, top_p)) continue;
      run += w(x);
      if (target < run) {
        atomicMin(&sh.choice, i);
        break;
      }
    }
  }
  __syncthreads();  // sh.choice final; sh.sum no longer read
  double unused = 0.0;
  float last_f = static_cast<float>(last), unused_lo = INFINITY;  // ids < 2^24 are exact floats
  BlockReduce(unused, last_f, unused_lo, sh);
  return sh.choice != INT_MAX ? sh.choice : static_cast<int>(last_f);
}

__global__ void __launch_bounds__(kThreads) SampleAdvanceKernel(const float* __restrict__ logits, int vocab, int ld,
                                                                SampleRow* rows, int32_t* token, int32_t* pos,
                                                                bool stage) {
  AllowDependents();
  WaitForPrerequisites();
  extern __shared__ float staged[];
  __shared__ SelectShared sh;
  const SampleRow p = rows[blockIdx.x];
  const float* row = logits + static_cast<size_t>(blockIdx.x) * ld;
  int chosen;
  if (p.temperature == 0.0f) {
    chosen = BlockArgmax(row, vocab);
  } else {
    double unused = 0.0;
    float mx = -INFINITY, mn = INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = row[i];
      if (stage) staged[i] = x;
      mx = fmaxf(mx, x);
      mn = fminf(mn, x);
    }
    BlockReduce(unused, mx, mn, sh);  // also orders the staging before its reads
    if (stage) row = staged;
    const Weights w{mx, 1.0 / static_cast<double>(p.temperature)};
    const Cut all{-INFINITY, INT_MAX};
    const float top = nextafterf(mx, INFINITY);
    const Cut top_k = p.top_k > 0 && p.top_k < vocab
                          ? FindCut<false>(row, vocab, all, mn, top, static_cast<double>(p.top_k), w, sh)
                          : all;
    Cut top_p = all;
    if (p.top_p < 1.0f) {
      double total = 0.0;
      float unused_hi = -INFINITY, unused_lo = INFINITY;
      for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float x = row[i];
        if (InCut(x, i, top_k)) total += w(x);
      }
      BlockReduce(total, unused_hi, unused_lo, sh);
      top_p = FindCut<true>(row, vocab, top_k, fmaxf(mn, top_k.v), top, static_cast<double>(p.top_p) * total, w, sh);
    }
    chosen = DrawKept(row, vocab, top_k, top_p, w, SampleUniform(p.seed, p.draw), sh);
  }
  if (threadIdx.x == 0) {
    token[blockIdx.x] = chosen;
    pos[blockIdx.x] += 1;
    if (p.temperature != 0.0f) rows[blockIdx.x].draw = p.draw + 1;
  }
}

}  // namespace

cudaError_t LaunchArgmax(const float* logits, int vocab, int ld, int32_t* out, int rows,
                         cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, out);
}

cudaError_t LaunchArgmaxAdvance(const float* logits, int vocab, int ld, int32_t* token, int32_t* pos, int rows,
                                cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxAdvanceKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, token, pos);
}

cudaError_t LaunchSampleAdvance(const float* logits, int vocab, int ld, SampleRow* rows, int32_t* token,
                                int32_t* pos, int n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (vocab <= 0 || ld < vocab) return cudaErrorInvalidValue;
  static const bool big_smem = [] {
    const bool ok = cudaFuncSetAttribute(SampleAdvanceKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         kSmemRowMax * static_cast<int>(sizeof(float))) == cudaSuccess;
    if (!ok) cudaGetLastError();  // not sticky: leave no error for the next check
    return ok;
  }();
  const bool stage = vocab <= (big_smem ? kSmemRowMax : 11 * 1024);  // 48 KB without the opt-in
  const size_t smem = stage ? sizeof(float) * vocab : 0;
  return Launch(SampleAdvanceKernel, dim3(n), dim3(kThreads), smem, stream, logits, vocab, ld, rows, token, pos, stage);
}

cudaError_t LaunchGreedyAdvance(const float* logits, int vocab, int32_t* token, int32_t* pos,
                                int32_t* history, int32_t* step, cudaStream_t stream) {
  return Launch(GreedyAdvanceKernel, dim3(1), dim3(kThreads), 0, stream, logits, vocab, token, pos, history, step);
}

}  // namespace llama::kernels
