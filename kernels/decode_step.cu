// The persistent decode step (kernels/decode_step.h): one cooperative kernel, every layer,
// phases separated by grid barriers. Each phase: do the block's share, arrive at the
// barrier, issue what the next phase needs that no one is writing (weights, scales, cached
// K/V), then wait for the other blocks.
#include <algorithm>
#include <cfloat>

#include "kernels/attention_common.cuh"
#include "kernels/decode_step.h"
#include "kernels/gemv_warp_block.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using gemv::GemvWarpBlock;
using gemv::GemvWarpSmem;
using gemv::kThreads;
using gemv::kWarps;

constexpr int kTileKeys = 32;  // keys per shared-memory tile of an attention part
constexpr int kMinPartKeys = 16;

// ---- Grid barrier: one monotonic counter, zeroed before the launch. ----

// Everything this block wrote before it is visible to a block that waits past it.
__device__ __forceinline__ void Arrive(uint32_t* counter) {
  __syncthreads();
  if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
}

// Until every block has arrived `target / gridDim.x` times: relaxed polls (an acquire per
// poll would invalidate L1 for the blocks still working on this SM), one fence after. A
// block that never arrives (a bug) ends the kernel with a trap after about a second instead
// of hanging the device.
__device__ __forceinline__ void Wait(const uint32_t* counter, uint32_t target) {
  if (threadIdx.x == 0) {
    uint32_t v = 0;
    for (long long spin = 0;; ++spin) {
      asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
      if (v >= target) break;
      if (spin > (1ll << 22)) __trap();
    }
    __threadfence();
  }
  __syncthreads();
}

// Diagnostic (DecodeStepArgs::clock): block 0 notes when phase `i` starts.
__device__ __forceinline__ void Clock(unsigned long long* clock, int i) {
  if (clock && blockIdx.x == 0 && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    clock[i] = t;
  }
}

// ---- GEMV phases (the warp GEMV's blocks, gemv_warp_block.cuh). ----

// The block's first GEMV block, before the barrier: weights, scales and zeros.
template <int G>
__device__ __forceinline__ void GemvPre(const GptqMatrix& w, const GemvWarpPlan& p, GemvWarpBlock<G>& b,
                                        const GemvWarpSmem& sm) {
  if (static_cast<int>(blockIdx.x) < p.blocks) b.Pre(w, blockIdx.x, p.ksplit, p.kb, sm);
}

// After the barrier: the block's GEMV blocks (the first one's Pre already done).
template <int G>
__device__ __forceinline__ void Gemv(const GptqMatrix& w, const GemvWarpPlan& p, const GemvInput& in, float* out,
                                     GemvWarpBlock<G>& b, const GemvWarpSmem& sm) {
  for (int vb = blockIdx.x; vb < p.blocks; vb += gridDim.x) {
    if (vb != static_cast<int>(blockIdx.x)) b.Pre(w, vb, p.ksplit, p.kb, sm);
    b.Post(w, in, out, /*rms_in_block=*/true, sm);
    __syncthreads();
  }
}

__device__ __forceinline__ GemvInput RmsInput(const float* x, const float* weight, float eps) {
  GemvInput in;
  in.kind = GemvSource::kRmsNorm;
  in.src = x;
  in.norm_weight = weight;
  in.eps = eps;
  return in;
}

// ---- Attention parts. ----

struct AttnSmem {
  __half* kv;   // per stage st: K rows at kv + 2 st T hd, V rows at kv + (2 st + 1) T hd (T = kTileKeys)
  float* p;     // [kTileKeys] scores
  float* wacc;  // [kWarps][hd]
  int hd;
  __device__ __forceinline__ __half* K(int st) const { return kv + (2 * st) * kTileKeys * hd; }
  __device__ __forceinline__ __half* V(int st) const { return kv + (2 * st + 1) * kTileKeys * hd; }
  __device__ __forceinline__ static AttnSmem At(unsigned char* base, int hd) {
    AttnSmem s;
    s.kv = reinterpret_cast<__half*>(base);
    s.p = reinterpret_cast<float*>(s.kv + 4 * kTileKeys * hd);
    s.wacc = s.p + kTileKeys;
    s.hd = hd;
    return s;
  }
  static size_t Bytes(int hd) { return 4ull * kTileKeys * hd * 2 + (kTileKeys + kWarps * hd) * 4; }
};

// The keys of part j of P over n keys: [begin, end), multiples of kMinPartKeys long.
struct Part {
  int h = 0, j = 0, begin = 0, end = 0;
  __device__ __forceinline__ Part(int item, int P, int n) : h(item / P), j(item % P) {
    const int per = ((n + P - 1) / P + kMinPartKeys - 1) / kMinPartKeys * kMinPartKeys;
    begin = min(n, j * per);
    end = min(n, begin + per);
  }
};

__device__ __forceinline__ int PartsPerHead(int n, int heads, int max_parts) {
  const int P = min(min(static_cast<int>(gridDim.x) / heads, max_parts), (n + kMinPartKeys - 1) / kMinPartKeys);
  return max(P, 1);
}

// Issues the cp.async copies of tile t of a part (cached keys only: those before pos) into
// stage `st`, and commits them as one group (every thread, even with nothing to copy).
__device__ __forceinline__ void IssueTile(const DecodeStepLayer& L, const AttnShape& s, int slot, int pos,
                                          const Part& part, int t, const AttnSmem& sm, int st) {
  const int hd = s.head_dim, chunks = hd / 8;
  const int kvh = part.h / (s.heads / s.kv_heads);
  const int key0 = part.begin + t * kTileKeys;
  const int rows = max(0, min(kTileKeys, min(part.end, pos) - key0));
  const size_t stride = static_cast<size_t>(s.kv_heads) * hd;
  const size_t base = static_cast<size_t>(slot) * s.max_ctx * stride + static_cast<size_t>(kvh) * hd;
  for (int c = threadIdx.x; c < rows * chunks; c += kThreads) {
    const int r = c / chunks, d = (c % chunks) * 8;
    const size_t g = base + static_cast<size_t>(key0 + r) * stride + d;
    CpAsync16(sm.K(st) + r * hd + d, L.k_cache + g);
    CpAsync16(sm.V(st) + r * hd + d, L.v_cache + g);
  }
  asm volatile("cp.async.commit_group;" ::: "memory");
}

// One part of one head (tile 0 already issued when `issued`): rotates q (and, in the part
// holding pos, the new key, which one head per kv head also writes to the cache), streams
// the tiles with an online softmax, writes the part's (max, sum) and unnormalized P.V; the
// head's last part to finish merges all of them into attn (fp16).
__device__ __forceinline__ void AttentionPart(const DecodeStepArgs& a, const DecodeStepLayer& L, int slot, int pos, const Part& part,
                              int P, bool issued, const AttnSmem& sm) {
  const AttnShape& s = a.shape;
  const int hd = s.head_dim, tpr = hd / 8, par = kThreads / tpr;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kvh = part.h / (s.heads / s.kv_heads);
  const int item = part.h * P + part.j;
  __shared__ int s_last;
  if (part.begin >= part.end) {  // past the keys: an empty part
    if (threadIdx.x == 0) a.part_ml[item] = make_float2(-FLT_MAX, 0.f);
  } else {
    if (!issued) IssueTile(L, s, slot, pos, part, 0, sm, 0);
    const float2* cs = a.rope_table + static_cast<size_t>(pos) * (hd / 2);
    float qf[8], kf[8], vf[8];
    RopeEight(a.qkv + part.h * hd, d0, hd, cs, qf);
    const float scale = rsqrtf(static_cast<float>(hd));
#pragma unroll
    for (int j = 0; j < 8; ++j) qf[j] *= scale;
    const bool holds_new = part.end == pos + 1;
    if (holds_new && r0 == 0) {
      RopeEight(a.qkv + (s.heads + kvh) * hd, d0, hd, cs, kf);
      const float* v = a.qkv + (s.heads + s.kv_heads + kvh) * hd + d0;
#pragma unroll
      for (int j = 0; j < 8; ++j) vf[j] = __half2float(__float2half(v[j]));
      if (part.h % (s.heads / s.kv_heads) == 0) {
        const size_t at = ((static_cast<size_t>(slot) * s.max_ctx + pos) * s.kv_heads + kvh) * hd + d0;
        StoreEight(L.k_cache + at, kf);
        StoreEight(L.v_cache + at, vf);
      }
    }
    const int tiles = (part.end - part.begin + kTileKeys - 1) / kTileKeys;
    float m_run = -FLT_MAX, l_run = 0.f, acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int t = 0; t < tiles; ++t) {
      const int st = t & 1, key0 = part.begin + t * kTileKeys, nk = min(kTileKeys, part.end - key0);
      if (t + 1 < tiles) {
        IssueTile(L, s, slot, pos, part, t + 1, sm, st ^ 1);
        asm volatile("cp.async.wait_group 1;" ::: "memory");
      } else {
        asm volatile("cp.async.wait_group 0;" ::: "memory");
      }
      if (holds_new && t + 1 == tiles && r0 == 0) {
        StoreEight(sm.K(st) + (pos - key0) * hd + d0, kf);
        StoreEight(sm.V(st) + (pos - key0) * hd + d0, vf);
      }
      __syncthreads();
      for (int rb = 0; rb < nk; rb += par) {
        const int r = rb + r0;
        float dot = r < nk ? DotEight(qf, sm.K(st) + r * hd + d0) : 0.f;
        for (int o = tpr / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        if (r < nk && d0 == 0) sm.p[r] = dot;
      }
      __syncthreads();
      // Online softmax, the statistics computed by every warp (no block reduction).
      float mx = -FLT_MAX;
      for (int j = lane; j < nk; j += 32) mx = fmaxf(mx, sm.p[j]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_new = fmaxf(m_run, mx), rescale = __expf(m_run - m_new);
      float sum = 0.f;
      for (int j = lane; j < nk; j += 32) sum += __expf(sm.p[j] - m_new);
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l_run = l_run * rescale + sum;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] *= rescale;
      for (int r = r0; r < nk; r += par) AxpyEight(__expf(sm.p[r] - m_new), sm.V(st) + r * hd + d0, acc);
      m_run = m_new;
      __syncthreads();  // the stage and the scores are rewritten next
    }
    // P.V: the row groups of a warp, then the warps.
    for (int o = tpr; o < 32; o <<= 1)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
    if (lane < tpr)
#pragma unroll
      for (int j = 0; j < 8; ++j) sm.wacc[warp * hd + d0 + j] = acc[j];
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += kThreads) {
      float v = 0.f;
      for (int w = 0; w < kWarps; ++w) v += sm.wacc[w * hd + d];
      a.part_acc[static_cast<size_t>(item) * hd + d] = v;
    }
    if (threadIdx.x == 0) a.part_ml[item] = make_float2(m_run, l_run);
  }
  // The head's last part merges (parts in index order: the result does not depend on which).
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(a.arrivals + part.h, 1u) == static_cast<uint32_t>(P - 1);
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const size_t first = static_cast<size_t>(part.h) * P;
  float mx = -FLT_MAX;
  for (int j = 0; j < P; ++j) {
    const float2 ml = __ldcg(a.part_ml + first + j);
    if (ml.y > 0.f) mx = fmaxf(mx, ml.x);
  }
  float den = 0.f;
  for (int j = 0; j < P; ++j) {
    const float2 ml = __ldcg(a.part_ml + first + j);
    if (ml.y > 0.f) den += __expf(ml.x - mx) * ml.y;
  }
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float v = 0.f;
    for (int j = 0; j < P; ++j) {
      const float2 ml = __ldcg(a.part_ml + first + j);
      if (ml.y > 0.f) v += __expf(ml.x - mx) * __ldcg(a.part_acc + (first + j) * hd + d);
    }
    a.attn[part.h * hd + d] = __float2half(v / den);
  }
  if (threadIdx.x == 0) a.arrivals[part.h] = 0;
}

__device__ __forceinline__ void LoadLayer(const DecodeStepLayer* src, DecodeStepLayer* dst) {
  const int* from = reinterpret_cast<const int*>(src);
  int* to = reinterpret_cast<int*>(dst);
  for (int i = threadIdx.x; i < static_cast<int>(sizeof(DecodeStepLayer) / 4); i += kThreads) to[i] = __ldg(from + i);
}

// ---- The step. ----

// MinBlocks: blocks per SM the registers are budgeted for (3: 80 registers, with ~600 bytes
// of spills; 2: 128). Measured on an H200 (tests/bench/RESULTS.md, session 5): 2 is faster
// in every phase but gate|up, whose 344 GEMV blocks then take two rounds.
template <int G, int MinBlocks>
__global__ void __launch_bounds__(kThreads, MinBlocks) DecodeStepKernel(DecodeStepArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ DecodeStepLayer s_layer[2];
  const GemvWarpSmem gs = GemvWarpSmem::At(smem);
  const AttnSmem as = AttnSmem::At(smem, a.shape.head_dim);  // same memory: phases never overlap
  const AttnShape& s = a.shape;
  const int qkv_n = (s.heads + 2 * s.kv_heads) * s.head_dim;
  const uint32_t nb = gridDim.x;
  uint32_t target = 0;
  GemvWarpBlock<G> gb;

  LoadLayer(a.layers, &s_layer[0]);
  __syncthreads();
  GemvPre(s_layer[0].qkv, s_layer[0].plan[0], gb, gs);
  WaitForPrerequisites();
  const int slot = a.slot[0], pos = a.pos[0];
  const int P = PartsPerHead(pos + 1, s.heads, a.max_parts), items = s.heads * P;
  Clock(a.clock, 0);

  for (int l = 0; l < a.n_layers; ++l) {
    const DecodeStepLayer& L = s_layer[l & 1];
    // q|k|v = rmsnorm(x) Wqkv.
    if (!(a.skip & 1)) Gemv<G>(L.qkv, L.plan[0], RmsInput(a.x, L.attn_norm, a.eps), a.qkv, gb, gs);
    Arrive(a.barrier);
    if (static_cast<int>(blockIdx.x) < items) IssueTile(L, s, slot, pos, Part(blockIdx.x, P, pos + 1), 0, as, 0);
    Wait(a.barrier, target += nb);
    Clock(a.clock, 5 * l + 1);

    // attn = attention over keys 0..pos (the new K/V written); gate_up cleared for the MLP.
    ZeroByGrid(a.gate_up, 2 * static_cast<size_t>(a.ffn));
    for (int item = blockIdx.x; !(a.skip & 2) && item < items; item += gridDim.x)
      AttentionPart(a, L, slot, pos, Part(item, P, pos + 1), P, item == static_cast<int>(blockIdx.x), as);
    Arrive(a.barrier);
    GemvPre(L.wo, L.plan[1], gb, gs);
    Wait(a.barrier, target += nb);
    Clock(a.clock, 5 * l + 2);

    // x += attn Wo; qkv cleared for the next layer.
    ZeroByGrid(a.qkv, static_cast<size_t>(qkv_n));
    GemvInput attn_in;
    attn_in.kind = GemvSource::kHalf;
    attn_in.x = a.attn;
    attn_in.ldx = s.heads * s.head_dim;
    if (!(a.skip & 4)) Gemv<G>(L.wo, L.plan[1], attn_in, a.x, gb, gs);
    Arrive(a.barrier);
    GemvPre(L.gate_up, L.plan[2], gb, gs);
    Wait(a.barrier, target += nb);
    Clock(a.clock, 5 * l + 3);

    // gate_up = rmsnorm(x) Wgu.
    if (!(a.skip & 8)) Gemv<G>(L.gate_up, L.plan[2], RmsInput(a.x, L.ffn_norm, a.eps), a.gate_up, gb, gs);
    Arrive(a.barrier);
    GemvPre(L.down, L.plan[3], gb, gs);
    Wait(a.barrier, target += nb);
    Clock(a.clock, 5 * l + 4);

    // x += swiglu(gate_up) Wdown.
    GemvInput mlp_in;
    mlp_in.kind = GemvSource::kSwiGlu;
    mlp_in.src = a.gate_up;
    if (!(a.skip & 16)) Gemv<G>(L.down, L.plan[3], mlp_in, a.x, gb, gs);
    if (l + 1 == a.n_layers) {  // the kernel's end is the last barrier
      if (a.clock) {
        Arrive(a.barrier);
        Wait(a.barrier, target += nb);
        Clock(a.clock, 5 * a.n_layers);
      }
      break;
    }
    LoadLayer(a.layers + l + 1, &s_layer[(l + 1) & 1]);
    Arrive(a.barrier);  // its barrier orders the layer copy too
    GemvPre(s_layer[(l + 1) & 1].qkv, s_layer[(l + 1) & 1].plan[0], gb, gs);
    Wait(a.barrier, target += nb);
    Clock(a.clock, 5 * (l + 1));
  }
}

size_t DynamicSmem(int head_dim) { return std::max(GemvWarpSmem::kBytes, AttnSmem::Bytes(head_dim)); }

template <int MinBlocks>
auto KernelFor(int group_rows) {
  return group_rows == 32   ? DecodeStepKernel<32, MinBlocks>
         : group_rows == 64 ? DecodeStepKernel<64, MinBlocks>
                            : DecodeStepKernel<128, MinBlocks>;
}
auto KernelFor(int group_rows, int blocks_per_sm) {
  return blocks_per_sm == 3 ? KernelFor<3>(group_rows) : KernelFor<2>(group_rows);
}

bool ShapeFits(int group_rows, int head_dim) {
  const int tpr = head_dim / 8;
  return (group_rows == 32 || group_rows == 64 || group_rows == 128) && head_dim % 8 == 0 && tpr <= 32 &&
         (tpr & (tpr - 1)) == 0;
}

}  // namespace

int DecodeStepGridBlocks(int group_rows, int head_dim, int blocks_per_sm) {
  if (!ShapeFits(group_rows, head_dim) || (blocks_per_sm != 2 && blocks_per_sm != 3)) return 0;
  const auto kernel = KernelFor(group_rows, blocks_per_sm);
  const size_t smem = DynamicSmem(head_dim);
  const int sms = SmCount();
  int dev = 0, per_sm = 0, coop = 0;
  if (sms <= 0 || cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess || !coop)
    return 0;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem) != cudaSuccess)
    return 0;
  return std::min(per_sm, blocks_per_sm) * sms;
}

cudaError_t LaunchDecodeStep(const DecodeStepArgs& a, int grid, cudaStream_t stream) {
  const AttnShape& s = a.shape;
  if (grid < 1 || a.n_layers < 1 || !ShapeFits(a.group_rows, s.head_dim) || s.kv_heads < 1 ||
      s.heads % s.kv_heads != 0 || a.max_parts < 1 || a.max_parts > kDecodeStepMaxParts ||
      (a.blocks_per_sm != 2 && a.blocks_per_sm != 3))
    return cudaErrorInvalidValue;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = DynamicSmem(s.head_dim);
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, KernelFor(a.group_rows, a.blocks_per_sm), a);
}

}  // namespace llama::kernels
