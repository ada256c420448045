#include "kernels/sampling.h"

#include "kernels/launch.h"
#include "kernels/sample_uniform.h"

#include <cfloat>
#include <climits>
#include <cstdint>

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
                                    int32_t* pos, int32_t* ids) {
  AllowDependents();
  WaitForPrerequisites();
  const int best = BlockArgmax(logits + static_cast<size_t>(blockIdx.x) * ld, vocab);
  if (threadIdx.x == 0) {
    token[blockIdx.x] = best;
    pos[blockIdx.x] += 1;
    if (ids) ids[blockIdx.x] = best;
  }
}


// ---------------------------------------------------------------- sampling (LaunchSampleAdvance)
// The rule of engine/sampler.h without a sort, touching the row O(1) times:
//  - Weights are integers: f(x) = round(exp((x - max) / T) * 2^E), the exp in double as on the
//    host, E = 63 - ceil(log2(vocab)) so that no sum of a row's weights overflows 64 bits (E = 48
//    at vocab 32000: each weight within 2^-49 of the host's, a row's total within vocab * 2^-49).
//    Integer sums are exact in any order: the search below is deterministic, a bin's mass equals
//    the sum of its sub-bins', and the exp is skipped where f would round to 0.
//  - A cut (top-k by counts, top-p by mass) is a radix select on order-preserving uint32 keys of
//    the logits (-0 and +0 one key): each pass histograms the candidates whose key lies in
//    [lo, hi] into at most 2048 bins of 2^s keys (shared-memory atomics, aggregated over the
//    warp's lanes that share the first member's bin), scans the bins in descending order for
//    the one where the running measure reaches the target, and narrows [lo, hi] to it: at most
//    3 passes to a single value (s = 21, 10, 0). The first top-p pass also gives the total.
//  - Ties at the cut value are kept lowest id first: how many follows from the chosen bin's
//    measure; when only some are kept, one id-order scan finds the last kept one.
//  - The draw is the inverse CDF in id order: thread t owns ids [t * per, (t + 1) * per), sums
//    its kept weights, an exclusive block scan finds the owner of u * total, and warp 0 re-walks
//    that one chunk 32 ids at a time (its weights computed a second time, no others).
// Rows are read as float4 over each thread's chunk, starting at a lane-rotated quad so that
// the lanes of a shared-memory phase hit distinct banks.

constexpr int kSmemRowMax = 51200;      // floats of a row staged in shared memory (200 KB)
constexpr int kSmemRowNoOptIn = 7168;   // 28 KB: with the static shared memory under 48 KB
constexpr int kBins = 2048;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
using u64 = unsigned long long;

// kept: x > v, or x == v and id <= id.
struct Cut {
  float v;
  int id;
};
__device__ __forceinline__ bool InCut(float x, int i, Cut c) { return x > c.v || (x == c.v && i <= c.id); }

// Order-preserving key: a < b (floats, not NaN) iff Key(a) < Key(b); -0 and +0 share a key.
__device__ __forceinline__ uint32_t Key(float x) {
  const uint32_t b = x == 0.0f ? 0u : __float_as_uint(x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float FromKey(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct Weights {
  double mx, inv_t, scale, dmin;  // scale = 2^E; below dmin = -(E + 2) ln 2 the weight rounds to 0
  __device__ __forceinline__ u64 operator()(float x) const {
    const double d = (static_cast<double>(x) - mx) * inv_t;  // the host's expression
    return d > dmin ? __double2ull_rn(exp(d) * scale) : 0ull;  // NaN (infinite logits) -> 0
  }
};

struct SampleShared {
  union {
    u64 mass[kBins];
    unsigned count[kBins];
  } hist;
  u64 warp_sum[kWarps];
  int warp_int[kWarps];
  float warp_hi[kWarps], warp_lo[kWarps];
  u64 above, measure, rem;
  int bin, owner, pick;
};

// Exclusive scan of v over the block (thread order); total = the sum, in every thread.
__device__ u64 BlockExclusiveScan(u64 v, u64& total, SampleShared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  u64 incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl += y;
  }
  if (lane == 31) sh.warp_sum[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    u64 t = sh.warp_sum[lane];
    for (int o = 1; o < 32; o <<= 1) {
      const u64 y = __shfl_up_sync(kFull, t, o);
      if (lane >= o) t += y;
    }
    sh.warp_sum[lane] = t;  // inclusive over warps
  }
  __syncthreads();
  total = sh.warp_sum[kWarps - 1];
  const u64 excl = incl - v + (warp > 0 ? sh.warp_sum[warp - 1] : 0ull);
  __syncthreads();  // warp_sum free again
  return excl;
}

__device__ int BlockMaxInt(int v, SampleShared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFull, v, o));
  if (lane == 0) sh.warp_int[warp] = v;
  __syncthreads();
  v = sh.warp_int[lane];
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFull, v, o));
  __syncthreads();
  return v;
}

__device__ void BlockMinMax(float& mx, float& mn, SampleShared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int o = 16; o > 0; o >>= 1) {
    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, o));
    mn = fminf(mn, __shfl_xor_sync(kFull, mn, o));
  }
  if (lane == 0) {
    sh.warp_hi[warp] = mx;
    sh.warp_lo[warp] = mn;
  }
  __syncthreads();
  mx = sh.warp_hi[lane];
  mn = sh.warp_lo[lane];
  for (int o = 16; o > 0; o >>= 1) {
    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, o));
    mn = fminf(mn, __shfl_xor_sync(kFull, mn, o));
  }
  __syncthreads();
}

// Calls f(quad, first id) for the quads of this thread's chunk [t * per, (t + 1) * per) (per a
// multiple of 4), the same number of times in every thread (collectives allowed in f); ids at
// or past vocab are f's to skip. Staged rows are padded to a multiple of 4 floats.
template <class F>
__device__ __forceinline__ void ForChunk(const float* row, int vocab, bool staged, int per, F&& f) {
  const int nq = per >> 2, base = static_cast<int>(threadIdx.x) * per;
  int q = static_cast<int>(threadIdx.x & 31) % nq;
  for (int j = 0; j < nq; ++j) {
    const int i0 = base + 4 * q;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i0 < vocab) {
      if (staged) {
        v = *reinterpret_cast<const float4*>(row + i0);
      } else {
        v.x = row[i0];
        if (i0 + 1 < vocab) v.y = row[i0 + 1];
        if (i0 + 2 < vocab) v.z = row[i0 + 2];
        if (i0 + 3 < vocab) v.w = row[i0 + 3];
      }
    }
    f(v, i0);
    if (++q == nq) q = 0;
  }
}

// Adds m to bin (bin < 0: nothing) from every lane of the warp: the lanes that share the first
// member lane's bin add with one atomic (their sum, for masses only when they are many: a sum
// over the warp costs ten shuffles), the others with their own (a run of -inf logits, or of
// any one value, thus costs one atomic per warp).
template <bool kMass>
__device__ __forceinline__ void AddToBin(int bin, u64 m, SampleShared& sh) {
  const unsigned members = __ballot_sync(kFull, bin >= 0);
  if (members == 0) return;
  const int lane = threadIdx.x & 31, leader = __ffs(members) - 1;
  const int lb = __shfl_sync(kFull, bin, leader);
  const unsigned same = __ballot_sync(kFull, bin == lb);
  if (kMass) {
    if (__popc(same) >= 6) {
      u64 part = bin == lb ? m : 0ull;
      for (int o = 16; o > 0; o >>= 1) part += __shfl_xor_sync(kFull, part, o);
      if (lane == leader) atomicAdd(&sh.hist.mass[lb], part);
      else if (bin >= 0 && bin != lb) atomicAdd(&sh.hist.mass[bin], m);
    } else if (bin >= 0) {
      atomicAdd(&sh.hist.mass[bin], m);
    }
  } else {
    if (lane == leader) atomicAdd(&sh.hist.count[lb], static_cast<unsigned>(__popc(same)));
    else if (bin >= 0 && bin != lb) atomicAdd(&sh.hist.count[bin], 1u);
  }
}

// The first id, in ascending order, where the running measure of the row exceeds target_of(total)
// (measure(x, i, m) says whether id i counts and sets its measure m); past the total: the last id
// that counts (-1: none).
template <class M, class T>
__device__ int ChunkPick(const float* row, int vocab, bool staged, int per, M measure, T target_of,
                         SampleShared& sh) {
  u64 local = 0;
  int last = -1;
  ForChunk(row, vocab, staged, per, [&](float4 v, int i0) {
    const float xs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      u64 m = 0;
      if (i0 + c < vocab && measure(xs[c], i0 + c, m)) {
        local += m;
        last = max(last, i0 + c);  // quads come in rotated order
      }
    }
  });
  if (threadIdx.x == 0) sh.owner = -1;
  const int last_all = BlockMaxInt(last, sh);  // also orders sh.owner's reset
  u64 total;
  const u64 prefix = BlockExclusiveScan(local, total, sh);
  const u64 target = target_of(total);
  if (local > 0 && prefix <= target && target - prefix < local) {  // one thread at most
    sh.owner = threadIdx.x;
    sh.rem = target - prefix;
  }
  __syncthreads();
  const int owner = sh.owner;
  int pick = last_all;
  if (owner >= 0) {
    if (threadIdx.x < 32) {
      const int lane = threadIdx.x;
      const u64 rem = sh.rem;
      const int b0 = owner * per, b1 = min(vocab, b0 + per);
      u64 run = 0;
      int found = last_all;
      for (int s = b0; s < b1; s += 32) {
        const int i = s + lane;
        u64 m = 0;
        if (i < b1 && !measure(row[i], i, m)) m = 0;
        u64 incl = m;
        for (int o = 1; o < 32; o <<= 1) {
          const u64 y = __shfl_up_sync(kFull, incl, o);
          if (lane >= o) incl += y;
        }
        const unsigned hit = __ballot_sync(kFull, run + incl > rem);
        if (hit) {
          found = s + __ffs(hit) - 1;
          break;
        }
        run += __shfl_sync(kFull, incl, 31);
      }
      if (lane == 0) sh.pick = found;
    }
    __syncthreads();
    pick = sh.pick;
  }
  __syncthreads();  // sh free again
  return pick;
}

struct TieMeasure {  // candidates equal to v, one each
  Cut cand;
  float v;
  __device__ bool operator()(float x, int i, u64& m) const {
    m = 1;
    return x == v && InCut(x, i, cand);
  }
};
struct FixedTarget {
  u64 t;
  __device__ u64 operator()(u64) const { return t; }
};

// The cut where the measure (1 per candidate, or its weight with kMass) of the candidates in
// descending order (ties: lower id first) first reaches the target (counts: target; mass:
// ceil(top_p * total), at least 1): the largest value v with M(>= v) >= target, then as many of
// the ties at v as reach it (all when the target is out of reach). Candidates: InCut(x, i, cand),
// all with keys in [klo, khi].
template <bool kMass>
__device__ Cut FindCut(const float* row, int vocab, bool staged, int per, Cut cand, uint32_t klo, uint32_t khi,
                       u64 target, float top_p, const Weights& w, SampleShared& sh) {
  u64 above = 0, measure = 0;  // M(key > khi); the chosen bin's measure
  bool first = true;
  do {
    const uint32_t range = khi - klo;
    int s = 0;
    while ((range >> s) >= static_cast<uint32_t>(kBins)) ++s;
    const int nb = static_cast<int>(range >> s) + 1;
    for (int b = threadIdx.x; b < nb; b += kThreads) {
      if (kMass) sh.hist.mass[b] = 0; else sh.hist.count[b] = 0;
    }
    __syncthreads();
    ForChunk(row, vocab, staged, per, [&](float4 v, int i0) {
      const float xs[4] = {v.x, v.y, v.z, v.w};
      int bins[4];
      bool any = false;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const uint32_t k = Key(xs[c]) - klo;
        bins[c] = i0 + c < vocab && k <= range && InCut(xs[c], i0 + c, cand) ? static_cast<int>(k >> s) : -1;
        any |= bins[c] >= 0;
      }
      if (!__any_sync(kFull, any)) return;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        u64 m = 1;
        if (kMass && bins[c] >= 0) {
          m = w(xs[c]);
          if (m == 0) bins[c] = -1;
        }
        AddToBin<kMass>(bins[c], m, sh);
      }
    });
    __syncthreads();
    // Bins in descending order: thread t holds positions 2t and 2t + 1, bins nb - 1 - 2t, nb - 2 - 2t.
    const int b0 = nb - 1 - 2 * static_cast<int>(threadIdx.x), b1 = b0 - 1;
    const u64 h0 = b0 >= 0 ? (kMass ? sh.hist.mass[b0] : sh.hist.count[b0]) : 0ull;
    const u64 h1 = b1 >= 0 ? (kMass ? sh.hist.mass[b1] : sh.hist.count[b1]) : 0ull;
    const u64 hz = kMass ? sh.hist.mass[0] : sh.hist.count[0];
    u64 total;
    const u64 excl = BlockExclusiveScan(h0 + h1, total, sh);
    if (kMass && first) {  // every candidate is in [klo, khi] on the first pass
      const double t = static_cast<double>(top_p) * static_cast<double>(total);
      target = t >= static_cast<double>(total) ? total : static_cast<u64>(ceil(t));
      if (target < 1) target = 1;
    }
    const u64 a0 = above + excl, a1 = a0 + h0;
    int pick = -1;  // one thread picks: the crossing bin, or bin 0 when the target is out of reach
    u64 pick_above = 0, pick_measure = 0;
    if (b0 >= 0 && a0 < target && target <= a1) {
      pick = b0, pick_above = a0, pick_measure = h0;
    } else if (b1 >= 0 && a1 < target && target <= a1 + h1) {
      pick = b1, pick_above = a1, pick_measure = h1;
    } else if ((b0 == 0 || b1 == 0) && above + total < target) {
      pick = 0, pick_above = above + total - hz, pick_measure = hz;
    }
    if (pick >= 0) {
      sh.bin = pick;
      sh.above = pick_above;
      sh.measure = pick_measure;
    }
    __syncthreads();
    const uint32_t bin = static_cast<uint32_t>(sh.bin), span = (1u << s) - 1u;
    above = sh.above;
    measure = sh.measure;
    klo += bin << s;
    if (khi - klo > span) khi = klo + span;
    first = false;
    __syncthreads();  // sh.bin read before the next pass's scan writes it
  } while (klo < khi);
  const float v = FromKey(klo);
  const u64 each = kMass ? w(v) : 1ull;
  if (each == 0 || measure == 0) return Cut{v, INT_MAX};
  const u64 keep = (target - above + each - 1) / each;  // >= 1: above < target
  if (keep * each >= measure) return Cut{v, INT_MAX};   // all ties (measure = ties * each)
  const int id = ChunkPick(row, vocab, staged, per, TieMeasure{cand, v}, FixedTarget{keep - 1}, sh);
  return Cut{v, id};
}

struct KeptMeasure {
  Cut top_k, top_p;
  Weights w;
  __device__ bool operator()(float x, int i, u64& m) const {
    if (!InCut(x, i, top_k) || !InCut(x, i, top_p)) return false;
    m = w(x);
    return true;
  }
};
struct DrawTarget {  // floor(u * total): the first kept id whose running weight exceeds it
  double u;
  __device__ u64 operator()(u64 total) const { return static_cast<u64>(u * static_cast<double>(total)); }
};

__global__ void __launch_bounds__(kThreads) SampleAdvanceKernel(const float* __restrict__ logits, int vocab, int ld,
                                                                SampleRow* rows, int32_t* token, int32_t* pos,
                                                                bool stage, int32_t* ids) {
  AllowDependents();
  WaitForPrerequisites();
  extern __shared__ __align__(16) float staged[];
  __shared__ SampleShared sh;
  const SampleRow p = rows[blockIdx.x];
  const float* row = logits + static_cast<size_t>(blockIdx.x) * ld;
  int chosen;
  if (p.temperature == 0.0f) {
    chosen = BlockArgmax(row, vocab);
  } else {
    float mx = -INFINITY, mn = INFINITY;
    const int padded = stage ? (vocab + 3) & ~3 : vocab;
    for (int i = threadIdx.x; i < padded; i += kThreads) {
      const float x = i < vocab ? row[i] : 0.0f;
      if (stage) staged[i] = x;
      if (i < vocab) {
        mx = fmaxf(mx, x);
        mn = fminf(mn, x);
      }
    }
    BlockMinMax(mx, mn, sh);  // also orders the staging before its reads
    if (stage) row = staged;
    if (!(mn <= mx)) {
      chosen = 0;  // every logit NaN
    } else {
      const int per = ((vocab + kThreads - 1) / kThreads + 3) & ~3;
      const int e = 63 - (vocab > 1 ? 32 - __clz(vocab - 1) : 0);  // vocab * 2^e <= 2^63
      const Weights w{mx, 1.0 / static_cast<double>(p.temperature), ldexp(1.0, e), -(e + 2) * 0.6931471805599453};
      const Cut all{-INFINITY, INT_MAX};
      const Cut top_k = p.top_k > 0 && p.top_k < vocab
                            ? FindCut<false>(row, vocab, stage, per, all, Key(mn), Key(mx),
                                             static_cast<u64>(p.top_k), 1.0f, w, sh)
                            : all;
      const Cut top_p = p.top_p < 1.0f ? FindCut<true>(row, vocab, stage, per, top_k, Key(fmaxf(mn, top_k.v)),
                                                       Key(mx), 0, p.top_p, w, sh)
                                       : all;
      chosen = ChunkPick(row, vocab, stage, per, KeptMeasure{top_k, top_p, w},
                         DrawTarget{SampleUniform(p.seed, p.draw)}, sh);
      if (chosen < 0) chosen = 0;  // not reached: the largest logit is always kept
    }
  }
  if (threadIdx.x == 0) {
    token[blockIdx.x] = chosen;
    pos[blockIdx.x] += 1;
    if (p.temperature != 0.0f) rows[blockIdx.x].draw = p.draw + 1;
    if (ids) ids[blockIdx.x] = chosen;
  }
}

}  // namespace

cudaError_t LaunchArgmax(const float* logits, int vocab, int ld, int32_t* out, int rows,
                         cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, out);
}

cudaError_t LaunchArgmaxAdvance(const float* logits, int vocab, int ld, int32_t* token, int32_t* pos, int rows,
                                cudaStream_t stream, int32_t* ids) {
  if (rows <= 0) return cudaSuccess;
  return Launch(ArgmaxAdvanceKernel, dim3(rows), dim3(kThreads), 0, stream, logits, vocab, ld, token, pos, ids);
}

cudaError_t LaunchSampleAdvance(const float* logits, int vocab, int ld, SampleRow* rows, int32_t* token,
                                int32_t* pos, int n, cudaStream_t stream, int32_t* ids) {
  if (n <= 0) return cudaSuccess;
  if (vocab <= 0 || ld < vocab) return cudaErrorInvalidValue;
  static const bool big_smem = [] {
    const bool ok = cudaFuncSetAttribute(SampleAdvanceKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         kSmemRowMax * static_cast<int>(sizeof(float))) == cudaSuccess;
    if (!ok) cudaGetLastError();  // not sticky: leave no error for the next check
    return ok;
  }();
  const bool stage = vocab <= (big_smem ? kSmemRowMax : kSmemRowNoOptIn);
  const size_t smem = stage ? sizeof(float) * ((vocab + 3) & ~3) : 0;  // padded to whole float4s
  return Launch(SampleAdvanceKernel, dim3(n), dim3(kThreads), smem, stream, logits, vocab, ld, rows, token, pos, stage,
                ids);
}

cudaError_t LaunchGreedyAdvance(const float* logits, int vocab, int32_t* token, int32_t* pos,
                                int32_t* history, int32_t* step, cudaStream_t stream) {
  return Launch(GreedyAdvanceKernel, dim3(1), dim3(kThreads), 0, stream, logits, vocab, token, pos, history, step);
}

}  // namespace llama::kernels
