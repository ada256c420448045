// Read-only streaming kernels (kernels/read_stream.h): the floor under a GEMV chain.
#include <cuda/ptx>

#include "kernels/launch.h"
#include "kernels/read_stream.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// One warp's lines of p, `U` lines per lane in flight: a contiguous run [l0, l1) or
// (kStrided) every `warps`-th set of U lines from its own; the first set is in `cur` already
// (Issue), each next set is issued before the current one is used, as the warp GEMV's stream
// does. kSpread (ReadStreamTuning::spread): the run's j-th line in issue order is Line(j).
template <int U, bool kStrided = false, int kSpread = 0>
struct WarpRun {
  uint4 cur[U];
  const uint4* p = nullptr;
  size_t l0 = 0, l1 = 0, step = U;
  int chunk = 16;

  // Run-local issue index j -> line (kSpread; a permutation of each chunk, see the header).
  __device__ __forceinline__ size_t Line(size_t j) const {
    if constexpr (kSpread == 0) {
      return j;
    } else {
      const size_t base = j / chunk * chunk, len = min(static_cast<size_t>(chunk), l1 - l0 - base), r = j - base;
      if (len % U != 0) return j;
      const size_t s = r / U, i = r % U, sets = len / U;
      return kSpread == 1 ? base + i * sets + s : base + (i >> 1) * 2 * sets + 2 * s + (i & 1);
    }
  }

  __device__ __forceinline__ void Issue(const void* base, size_t n16, size_t warp, size_t warps, int spread_chunk = 16) {
    const size_t lines = n16 / 32;
    chunk = spread_chunk;
    if constexpr (kStrided) {
      l0 = min(lines, warp * U);
      l1 = lines;
      step = warps * U;
    } else {
      const size_t per = (lines + warps - 1) / warps;
      l0 = min(lines, warp * per);
      l1 = min(lines, l0 + per);
    }
    p = reinterpret_cast<const uint4*>(base) + (threadIdx.x & 31);
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (l0 + i < l1) cur[i] = __ldcs(p + (l0 + Line(i)) * 32);
  }

  __device__ __forceinline__ uint32_t Drain() {
    uint32_t acc = 0;
    const size_t st = kStrided ? step : U;
    for (size_t l = l0; l < l1; l += st) {
      uint4 nxt[U];
#pragma unroll
      for (int i = 0; i < U; ++i)
        if (l + st + i < l1) nxt[i] = __ldcs(p + (l0 + Line(l - l0 + st + i)) * 32);
#pragma unroll
      for (int i = 0; i < U; ++i)
        if (l + i < l1) acc ^= cur[i].x ^ cur[i].y ^ cur[i].z ^ cur[i].w;
#pragma unroll
      for (int i = 0; i < U; ++i) cur[i] = nxt[i];
    }
    return acc;
  }
};

// check: XORs the warp's words into *sink (one atomic per warp, all on one address at the end
// of the kernel: run 6 of session 14 timed chains 5-39% slower with them, on another
// machine than run 1, cause not separated), else stores only an XOR no data gives, which
// keeps the loads without any end traffic (the bench's figures).
__device__ __forceinline__ void Sink(uint32_t acc, uint32_t* sink, bool check) {
  if (!check) {
    if (acc == 0x9e3779b9u) *sink = acc;
    return;
  }
  for (int o = 16; o > 0; o >>= 1) acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) atomicXor(sink, acc);
}

__device__ __forceinline__ unsigned long long GlobalTimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
// Lane 0 of each warp: times[3 warp + i] (ReadStreamExtras::times).
__device__ __forceinline__ void Mark(unsigned long long* times, size_t warp, int i, unsigned long long t) {
  if (times && (threadIdx.x & 31) == 0) times[3 * warp + i] = t;
}

// The static stream: each warp's lines (WarpRun), the first set before the PDL wait when
// pre_wait.
template <int U, bool kStrided, int kSpread = 0>
__global__ void __launch_bounds__(kThreads) ReadStreamKernel(const void* p, size_t n16, bool pre_wait, bool wait,
                                                             uint32_t* sink, bool check, unsigned long long* times,
                                                             int spread_chunk) {
  AllowDependents();
  const unsigned long long t0 = GlobalTimer();
  const size_t warps = static_cast<size_t>(gridDim.x) * kWarps;
  const size_t warp = static_cast<size_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  WarpRun<U, kStrided, kSpread> run;
  if (pre_wait) run.Issue(p, n16, warp, warps, spread_chunk);
  if (wait) WaitForPrerequisites();
  Mark(times, warp, 0, t0);
  Mark(times, warp, 1, GlobalTimer());
  if (!pre_wait) run.Issue(p, n16, warp, warps, spread_chunk);
  Sink(run.Drain(), sink, check);
  Mark(times, warp, 2, GlobalTimer());
}

// ReadStreamTuning::dyn_chunk_lines: chunks of C lines (C % U == 0); warp w reads chunk w,
// then the chunks lane 0 claims from *counter (each claim issued when the warp enters a
// chunk, used when it leaves it), so no warp waits on a round trip to the counter.
template <int U>
__global__ void __launch_bounds__(kThreads) ReadStreamDynKernel(const void* p, size_t n16, bool pre_wait, bool wait,
                                                                uint32_t* sink, bool check, int chunk,
                                                                uint32_t* counter, unsigned long long* times) {
  AllowDependents();
  const unsigned long long t0 = GlobalTimer();
  const size_t warps = static_cast<size_t>(gridDim.x) * kWarps;
  const size_t warp = static_cast<size_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const size_t lines = n16 / 32, chunks = (lines + chunk - 1) / chunk;
  const uint4* base = reinterpret_cast<const uint4*>(p) + lane;
  size_t l = warp * chunk, e = warp < chunks ? min(lines, l + chunk) : l;
  uint4 cur[U];
  auto issue = [&](uint4 (&v)[U], size_t at, size_t end) {
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (at + i < end) v[i] = __ldcs(base + (at + i) * 32);
  };
  if (pre_wait) issue(cur, l, e);
  if (wait) WaitForPrerequisites();
  Mark(times, warp, 0, t0);
  Mark(times, warp, 1, GlobalTimer());
  if (!pre_wait) issue(cur, l, e);
  uint32_t claim = 0;
  if (lane == 0 && l < e) claim = atomicAdd(counter, 1u);
  uint32_t acc = 0;
  while (l < e) {
    size_t nl = l + U, ne = e;
    if (nl >= e) {  // the chunk ends with this set: the next is the claimed one
      const size_t c = warps + __shfl_sync(0xffffffffu, claim, 0);
      nl = c * chunk;
      ne = c < chunks ? min(lines, nl + chunk) : nl;
      if (lane == 0 && nl < ne) claim = atomicAdd(counter, 1u);
    }
    uint4 nxt[U];
    issue(nxt, nl, ne);
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (l + i < e) acc ^= cur[i].x ^ cur[i].y ^ cur[i].z ^ cur[i].w;
#pragma unroll
    for (int i = 0; i < U; ++i) cur[i] = nxt[i];
    l = nl;
    e = ne;
  }
  Sink(acc, sink, check);
  Mark(times, warp, 2, GlobalTimer());
}

// Lane 0: stage `s` of the warp's ring expects `bytes`, which one bulk copy brings.
__device__ __forceinline__ void BulkStage(uint64_t* bar, void* dst, const void* src, uint32_t bytes) {
  namespace ptx = cuda::ptx;
  ptx::mbarrier_arrive_expect_tx(ptx::sem_release, ptx::scope_cta, ptx::space_shared, bar, bytes);
  ptx::cp_async_bulk(ptx::space_cluster, ptx::space_global, dst, src, bytes, bar);
}

// ReadStreamTuning::bulk_stages: each warp's static run through a ring of S stages of
// `stage_lines` lines in dynamic shared memory (warp w's ring at w * S * stage_lines * 512).
template <int S>
__global__ void __launch_bounds__(kThreads) ReadBulkKernel(const void* p, size_t n16, bool pre_wait, bool wait,
                                                           uint32_t* sink, bool check, int stage_lines,
                                                           unsigned long long* times) {
  extern __shared__ __align__(128) unsigned char ring_smem[];
  __shared__ __align__(8) uint64_t bars[kWarps][S];
  AllowDependents();
  const unsigned long long t0 = GlobalTimer();
  const size_t warps = static_cast<size_t>(gridDim.x) * kWarps;
  const int wib = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t warp = static_cast<size_t>(blockIdx.x) * kWarps + wib;
  const size_t lines = n16 / 32, per = (lines + warps - 1) / warps;
  const size_t l0 = min(lines, warp * per), l1 = min(lines, l0 + per);
  const int chunks = static_cast<int>((l1 - l0 + stage_lines - 1) / stage_lines);
  const size_t stage_bytes = static_cast<size_t>(stage_lines) * 512;
  unsigned char* ring = ring_smem + wib * S * stage_bytes;
  const unsigned char* src = static_cast<const unsigned char*>(p);
  auto issue = [&](int c) {
    const size_t a = l0 + static_cast<size_t>(c) * stage_lines, n = min(l1, a + stage_lines) - a;
    BulkStage(&bars[wib][c % S], ring + (c % S) * stage_bytes, src + a * 512, static_cast<uint32_t>(n * 512));
  };
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < S; ++i) cuda::ptx::mbarrier_init(&bars[wib][i], 1);
    cuda::ptx::fence_mbarrier_init(cuda::ptx::sem_release, cuda::ptx::scope_cluster);
    if (pre_wait)
      for (int c = 0; c < S && c < chunks; ++c) issue(c);
  }
  __syncwarp();
  if (wait) WaitForPrerequisites();
  Mark(times, warp, 0, t0);
  Mark(times, warp, 1, GlobalTimer());
  if (!pre_wait && lane == 0)
    for (int c = 0; c < S && c < chunks; ++c) issue(c);
  uint32_t acc = 0;
  for (int c = 0; c < chunks; ++c) {
    while (!cuda::ptx::mbarrier_try_wait_parity(&bars[wib][c % S], static_cast<uint32_t>(c / S) & 1u)) {
    }
    const size_t a = l0 + static_cast<size_t>(c) * stage_lines;
    const int n = static_cast<int>(min(l1, a + stage_lines) - a);
    const uint4* st = reinterpret_cast<const uint4*>(ring + (c % S) * stage_bytes) + lane;
    for (int j = 0; j < n; ++j) {
      const uint4 v = st[j * 32];
      acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    __syncwarp();
    if (lane == 0 && c + S < chunks) issue(c + S);
  }
  Sink(acc, sink, check);
  Mark(times, warp, 2, GlobalTimer());
}

// Every block of the grid arrives, then waits for all: `target` = arrivals expected so far.
__device__ __forceinline__ void GridBarrier(uint32_t* barrier, uint32_t target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(barrier, 1u);
    uint32_t seen;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(barrier) : "memory");
    } while (seen < target);
  }
  __syncthreads();
}

template <int U>
__global__ void __launch_bounds__(kThreads) ReadPhasesKernel(const void* const* ptr, const size_t* n16, int phases,
                                                             uint32_t* barrier, uint32_t* sink, bool check) {
  const size_t warps = static_cast<size_t>(gridDim.x) * kWarps;
  const size_t warp = static_cast<size_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  uint32_t acc = 0;
  WarpRun<U> run;
  run.Issue(ptr[0], n16[0], warp, warps);
  for (int i = 0; i < phases; ++i) {
    acc ^= run.Drain();
    if (i + 1 == phases) break;
    run.Issue(ptr[i + 1], n16[i + 1], warp, warps);  // immutable: before the barrier
    GridBarrier(barrier, static_cast<uint32_t>(i + 1) * gridDim.x);
  }
  Sink(acc, sink, check);
}

template <typename Kernel>
int GridFor(Kernel kernel, const ReadStreamTuning& t, size_t smem = 0) {
  int sms = SmCount(), fit = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kThreads, smem) != cudaSuccess) return 0;
  return t.blocks_per_sm <= fit ? t.blocks_per_sm * sms : 0;
}

// The stream kernels for 2, 4 or 8 loads in flight per lane.
using StaticKernelFn = void (*)(const void*, size_t, bool, bool, uint32_t*, bool, unsigned long long*, int);
using DynKernelFn = void (*)(const void*, size_t, bool, bool, uint32_t*, bool, int, uint32_t*, unsigned long long*);
StaticKernelFn StaticKernel(int unroll, bool strided, int spread = 0) {
  if (spread == 1) return unroll == 4 ? ReadStreamKernel<4, false, 1> : ReadStreamKernel<8, false, 1>;
  if (spread == 2) return unroll == 4 ? ReadStreamKernel<4, false, 2> : ReadStreamKernel<8, false, 2>;
  if (strided)
    return unroll == 2 ? ReadStreamKernel<2, true> : unroll == 4 ? ReadStreamKernel<4, true> : ReadStreamKernel<8, true>;
  return unroll == 2 ? ReadStreamKernel<2, false>
                     : unroll == 4 ? ReadStreamKernel<4, false> : ReadStreamKernel<8, false>;
}
DynKernelFn DynKernel(int unroll) {
  return unroll == 2 ? ReadStreamDynKernel<2> : unroll == 4 ? ReadStreamDynKernel<4> : ReadStreamDynKernel<8>;
}

using BulkKernelFn = void (*)(const void*, size_t, bool, bool, uint32_t*, bool, int, unsigned long long*);
BulkKernelFn BulkKernel(int stages) {
  return stages == 2 ? ReadBulkKernel<2> : stages == 4 ? ReadBulkKernel<4> : stages == 8 ? ReadBulkKernel<8> : nullptr;
}
size_t BulkSmem(const ReadStreamTuning& t) {
  return static_cast<size_t>(kWarps) * t.bulk_stages * t.bulk_stage_lines * 512;
}

}  // namespace

int ReadStreamGrid(const ReadStreamTuning& t) {
  if (t.bulk_stages > 0) {
    BulkKernelFn k = BulkKernel(t.bulk_stages);
    if (!k || t.bulk_stage_lines < 1 ||
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(BulkSmem(t))) !=
            cudaSuccess)
      return 0;
    return GridFor(k, t, BulkSmem(t));
  }
  if (t.unroll != 2 && t.unroll != 4 && t.unroll != 8) return 0;
  return t.dyn_chunk_lines > 0 ? GridFor(DynKernel(t.unroll), t)
                                : GridFor(StaticKernel(t.unroll, t.strided, t.spread), t);
}

cudaError_t LaunchReadStream(const void* p, size_t n16, const ReadStreamTuning& t, uint32_t* sink,
                             cudaStream_t stream, const ReadStreamExtras& extras) {
  if ((t.unroll != 2 && t.unroll != 4 && t.unroll != 8) || n16 % 32 != 0 || t.dyn_chunk_lines < 0 ||
      t.dyn_chunk_lines % t.unroll != 0 || (t.dyn_chunk_lines > 0 && extras.counter == nullptr))
    return cudaErrorInvalidValue;
  if (t.bulk_stages > 0 && t.dyn_chunk_lines > 0) return cudaErrorInvalidValue;
  if (t.strided && (t.bulk_stages > 0 || t.dyn_chunk_lines > 0)) return cudaErrorInvalidValue;
  if (t.spread != 0 && (t.spread < 0 || t.spread > 2 || t.unroll == 2 || t.strided || t.bulk_stages > 0 ||
                        t.dyn_chunk_lines > 0 || t.spread_chunk < t.unroll || t.spread_chunk % t.unroll != 0))
    return cudaErrorInvalidValue;
  const int grid = ReadStreamGrid(t);
  if (grid <= 0) return cudaErrorInvalidConfiguration;
  if (t.bulk_stages > 0)
    return Launch(BulkKernel(t.bulk_stages), dim3(grid), dim3(kThreads), BulkSmem(t), stream, p, n16, t.pre_wait,
                  t.wait, sink, t.xor_into_sink, t.bulk_stage_lines, extras.times);
  if (t.dyn_chunk_lines > 0)
    return Launch(DynKernel(t.unroll), dim3(grid), dim3(kThreads), 0,
                  stream, p, n16, t.pre_wait, t.wait, sink, t.xor_into_sink, t.dyn_chunk_lines, extras.counter,
                  extras.times);
  return Launch(StaticKernel(t.unroll, t.strided, t.spread), dim3(grid), dim3(kThreads), 0, stream, p, n16,
                t.pre_wait, t.wait, sink, t.xor_into_sink, extras.times, t.spread_chunk);
}

cudaError_t LaunchReadPhases(const void* const* ptr, const size_t* n16, int phases, const ReadStreamTuning& t,
                             uint32_t* barrier, uint32_t* sink, cudaStream_t stream) {
  if ((t.unroll != 4 && t.unroll != 8) || phases < 1) return cudaErrorInvalidValue;
  auto kernel = t.unroll == 4 ? ReadPhasesKernel<4> : ReadPhasesKernel<8>;
  const int grid = GridFor(kernel, t);
  if (grid <= 0) return cudaErrorInvalidConfiguration;
  const void* const* a_ptr = ptr;
  const size_t* a_n16 = n16;
  bool check = t.xor_into_sink;
  void* args[] = {&a_ptr, &a_n16, &phases, &barrier, &sink, &check};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), dim3(grid), dim3(kThreads), args, 0,
                                     stream);
}

}  // namespace llama::kernels
