// Causal flash-attention prefill, head_dim 128 (FlashAttention-2 forward on mma.sync).
// One CTA = one query head x 128 query rows (4 warps, 32 rows = two m16 tiles each: kMt = 2), or
// 64 rows (16 per warp, kMt = 1) for short prompts whose 128-row CTAs would not fill the GPU
// (see the launcher); grid (H, ceil(T / rows)) with the query blocks in reverse so that the CTAs
// with the most keys start first. K/V tiles of 64 keys stream through shared memory with cp.async
// (2 stages each; K and V in separate groups so that S = Q K^T starts while V still lands). Q
// stays in shared memory and its A fragments are reloaded per k-step, so with kMt = 2 every K / V
// B fragment that ldmatrix brings feeds 4 mma (2 m-tiles x 2 n-tiles): half the shared-memory
// traffic per mma of 16-row warps, which is what limits them. A warp keeps its 16kMt x 64 scores
// (32kMt fp32) and its 16kMt x 128 output (64kMt fp32) in registers; softmax is online in fp32
// with ex2.approx (scale * log2 e folded in), row max / sum reduced over the quad; the scores
// become the fp16 A fragments of P V in registers. Only tiles reaching past a warp's first row are
// masked, and tiles past its last row are skipped (exact: a fully masked tile leaves max, sum and
// O unchanged). Shared rows (128 halves = 16 chunks of 16 bytes) are XOR-swizzled (chunk c of row
// r at c ^ (r & 7)), so the 8 rows of every ldmatrix phase hit distinct banks. kMt = 2: 96 KB of
// shared memory and 255 registers (no spills), kMt = 1: 80 KB, 183: 2 CTAs (8 warps) per SM.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 row.col, g = lane / 4, t = lane % 4):
//   A (16 x 16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16 x 8, "col"):      b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//   C (16 x 8, fp32):       c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
// ldmatrix.x4: lane i gives the address of row i % 8 of matrix i / 8; register j gets matrix j's
// (row g, cols 2t..2t+1), with .trans its (rows 2t..2t+1, col g).
#include "kernels/flash_prefill.h"

#include <atomic>
#include <cmath>
#include <cstdint>

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kHd = 128;                       // head dim
constexpr int kBlockN = 64;                    // keys per K/V tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileBytes = kBlockN * kHd * 2;  // one K or V tile (16 KB)
constexpr int kCopyRows = kThreads / 16;       // rows one pass of 16-byte copies covers (16 chunks per row)
// With kMt m16 tiles per warp: query rows per CTA, and shared memory = Q (reused to stage the
// output) + 2 K stages + 2 V stages.
__host__ __device__ constexpr int BlockM(int kMt) { return kMt * kWarps * 16; }
constexpr size_t SmemBytes(int kMt) { return static_cast<size_t>(BlockM(kMt)) * kHd * 2 + 4 * kTileBytes; }

// Half offset of 16-byte chunk c (dims 8c..8c+7) of row r in a swizzled [rows][128] tile.
__device__ __forceinline__ int Swz(int r, int c) { return r * kHd + ((c ^ (r & 7)) << 3); }
// Byte offset of the same chunk: shared memory is addressed in 32 bits (fewer registers).
__device__ __forceinline__ uint32_t SwzB(int r, int c) { return static_cast<uint32_t>(Swz(r, c)) * 2u; }

// 16 bytes global -> shared, or 16 zero bytes when !valid (src-size 0: nothing is read).
__device__ __forceinline__ void CpAsyncZfill16(uint32_t dst, const __half* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most `n` of this thread's committed groups are pending.
template <int n>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(n) : "memory");
}

__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], uint32_t a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
}

// c += a * b (m16n8k16, fp16 in, fp32 accumulate).
__device__ __forceinline__ void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x, one MUFU op (relative error ~2^-22; results below 2^-126 flush to 0, -inf gives 0).
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// (lo, hi) as fp16 in one register, lo in the low half: the element order of every fragment.
__device__ __forceinline__ uint32_t PackHalf2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// grid (H, ceil(T / BlockM(kMt))), kThreads threads, SmemBytes(kMt) dynamic shared memory.
template <int kMt>
__global__ void __launch_bounds__(kThreads, 2) FlashPrefillKernel(const __half* __restrict__ q,
                                                                  const __half* __restrict__ k_cache,
                                                                  const __half* __restrict__ v_cache, int slot,
                                                                  int start, int T, AttnShape s, float scale_log2,
                                                                  __half* __restrict__ out) {
  constexpr int kBlockM = BlockM(kMt);  // query rows per CTA
  AllowDependents();
  extern __shared__ uint4 smem_raw[];  // uint4: 16-byte aligned for cp.async / ldmatrix
  __half* sq = reinterpret_cast<__half*>(smem_raw);
  const uint32_t sq_a = static_cast<uint32_t>(__cvta_generic_to_shared(sq));  // shared byte addresses
  const uint32_t sk_a = sq_a + kBlockM * kHd * 2;  // K stage st at sk_a + st * kTileBytes
  const uint32_t sv_a = sk_a + 2 * kTileBytes;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int h = blockIdx.x, kvh = h / (s.heads / s.kv_heads);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBlockM;  // heaviest query block first
  const int rows = min(kBlockM, T - m0);
  const int n_keys = start + m0 + rows;  // keys 0..n_keys-1: those the block's last row sees
  const int n_tiles = (n_keys + kBlockN - 1) / kBlockN;
  const size_t q_stride = static_cast<size_t>(s.heads) * kHd, kv_stride = static_cast<size_t>(s.kv_heads) * kHd;

  // Copies: thread tid moves chunk cc of rows cr + kCopyRows * i of a tile (a warp covers two
  // whole 256-byte rows per pass). Rows past the valid range are zero-filled, never read.
  const int cc = tid & 15, cr = tid >> 4;
  const size_t kv_off = (static_cast<size_t>(slot) * s.max_ctx + cr) * kv_stride + kvh * kHd + cc * 8;
  const __half* k_src = k_cache + kv_off;
  const __half* v_src = v_cache + kv_off;
  auto load_kv = [&](const __half* src, const __half* base, uint32_t dst, int kv0) {
    src += static_cast<size_t>(kv0) * kv_stride;
#pragma unroll
    for (int i = 0; i < kBlockN / kCopyRows; ++i, src += kCopyRows * kv_stride) {
      const int r = cr + kCopyRows * i;
      const bool valid = kv0 + r < n_keys;
      CpAsyncZfill16(dst + SwzB(r, cc), valid ? src : base, valid);
    }
  };

  WaitForPrerequisites();  // q and the cache (RoPE) come from earlier kernels; out is written after this
  {
    const __half* q_src = q + static_cast<size_t>(m0 + cr) * q_stride + h * kHd + cc * 8;
#pragma unroll
    for (int i = 0; i < kBlockM / kCopyRows; ++i) {
      const int r = cr + kCopyRows * i;
      CpAsyncZfill16(sq_a + SwzB(r, cc), r < rows ? q_src + static_cast<size_t>(kCopyRows * i) * q_stride : q,
                     r < rows);
    }
  }
  load_kv(k_src, k_cache, sk_a, 0);
  CpAsyncCommit();  // group: Q, K_0
  load_kv(v_src, v_cache, sv_a, 0);
  CpAsyncCommit();  // group: V_0
  // Commit order from here: K_{j+1}, V_{j+1} in iteration j (empty groups past the last tile), so
  // wait_group 1 always leaves exactly the newest group pending: K_j (+ Q) at the top of iteration
  // j, V_j after K_{j+1} was committed.

  float o[kMt][kHd / 8][4];  // m-tile mi = warp rows 16mi..16mi+15, n-tile d = dims 8d..8d+7, C layout
#pragma unroll
  for (int mi = 0; mi < kMt; ++mi) {
#pragma unroll
    for (int d = 0; d < kHd / 8; ++d) o[mi][d][0] = o[mi][d][1] = o[mi][d][2] = o[mi][d][3] = 0.f;
  }
  // Row (mi, r) = warp row 16mi + g + 8r; max (uniform over the quad) kept pre-scaled by scale_log2;
  // sums are this lane's partials, quad-reduced at the end.
  float row_max[kMt][2], row_sum[kMt][2];
#pragma unroll
  for (int mi = 0; mi < kMt; ++mi) row_max[mi][0] = row_max[mi][1] = -INFINITY, row_sum[mi][0] = row_sum[mi][1] = 0.f;
  // Block row of the warp's first row; the last key its first / last row sees (padding rows t >= T act as T - 1).
  const int wrow = warp * kMt * 16, row0 = m0 + wrow + g;
  const int first_lim = start + min(m0 + wrow, T - 1), last_lim = start + min(m0 + wrow + kMt * 16 - 1, T - 1);
  // ldmatrix byte offsets of this lane for chunk-pair 0 (see the layouts below). Rows are 256 bytes,
  // so the chunk sits in bits 4..7 of an offset and chunk pair k (chunks 2k, 2k+1) is offset ^ (k << 5).
  const uint32_t q_off = SwzB(wrow + (lane & 15), lane >> 4);
  const uint32_t k_off = SwzB((lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
  const uint32_t v_off = SwzB(lane & 15, lane >> 4);

  // Top of tile j: wait for K_j (which == 0) or V_j (which == 1) and hand the other stage to
  // the copies of tile j + 1. wait_group 1: this thread's copies have landed; the barrier: everyone's,
  // and every warp is done with tile j - 1 (stage (j & 1) ^ 1 is free).
  auto next_stage = [&](int j, int which) {
    CpAsyncWait<1>();
    __syncthreads();
    const uint32_t dst = (which ? sv_a : sk_a) + ((j & 1) ^ 1) * kTileBytes;
    if (j + 1 < n_tiles) load_kv(which ? v_src : k_src, which ? v_cache : k_cache, dst, (j + 1) * kBlockN);
    CpAsyncCommit();
  };
  // Tiles past the warp's last row (all keys masked for it, always the trailing ones) are skipped
  // (exact: they would leave max, sum and O unchanged); the warp still joins their barriers.
  const int warp_tiles = min(n_tiles, last_lim / kBlockN + 1);
  int j = 0;
  for (; j < warp_tiles; ++j) {
    const int kv0 = j * kBlockN, st = j & 1;
    const uint32_t skt = sk_a + st * kTileBytes, svt = sv_a + st * kTileBytes;
    next_stage(j, 0);

    // P as fp16 A fragments of P V, k-step kk = keys 16kk..16kk+15 (half the registers of S across
    // the V barrier): a0 = (g, 2t..) = sc[mi][2kk][0..1], a1 = (g+8, 2t..) = sc[mi][2kk][2..3],
    // a2 = (g, 8+2t..) = sc[mi][2kk+1][0..1], a3 = sc[mi][2kk+1][2..3].
    uint32_t pa[kMt][kBlockN / 16][4];
    {
      float sc[kMt][kBlockN / 8][4];  // m-tile mi, n-tile n = keys kv0 + 8n..8n+7
      // S = Q K^T. A = Q, k-step kk = dims 16kk..16kk+15: matrices (rows 0-7 | 8-15) x (chunk 2kk |
      // 2kk+1) in the order a0..a3, so lane i addresses row 16mi + i % 16 of the warp's rows, chunk
      // 2kk + i / 16. B = K^T (k = dim, n = key) is "col" = K rows as stored. ldmatrix matrices
      // (keys 0-7, chunk 2kk), (keys 0-7, chunk 2kk+1), (keys 8-15, 2kk), (keys 8-15, 2kk+1) of key
      // pair np give b0, b1 of n-tile 2np then b0, b1 of n-tile 2np + 1: lane i addresses key
      // 16np + i % 8 + 8 (i / 16), chunk 2kk + (i / 8) % 2. Each B fragment serves both m-tiles.
#pragma unroll
      for (int mi = 0; mi < kMt; ++mi) {
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n) sc[mi][n][0] = sc[mi][n][1] = sc[mi][n][2] = sc[mi][n][3] = 0.f;
      }
#pragma unroll
      for (int kk = 0; kk < kHd / 16; ++kk) {
        uint32_t qa[kMt][4];
#pragma unroll
        for (int mi = 0; mi < kMt; ++mi) LdMatrixX4(qa[mi], sq_a + mi * 16 * kHd * 2 + (q_off ^ (kk << 5)));
#pragma unroll
        for (int np = 0; np < kBlockN / 16; ++np) {
          uint32_t b[4];
          LdMatrixX4(b, skt + np * 16 * kHd * 2 + (k_off ^ (kk << 5)));
#pragma unroll
          for (int mi = 0; mi < kMt; ++mi) {
            Mma(sc[mi][2 * np], qa[mi], b[0], b[1]);
            Mma(sc[mi][2 * np + 1], qa[mi], b[2], b[3]);
          }
        }
      }
      // Causal mask (also hides zero-filled keys >= n_keys, all past the block's last row) where the
      // tile reaches past the warp's first row; the earlier tiles are visible to all its rows.
      if (kv0 + kBlockN - 1 > first_lim) {
#pragma unroll
        for (int mi = 0; mi < kMt; ++mi) {
          const int lim0 = start + min(row0 + 16 * mi, T - 1), lim1 = start + min(row0 + 16 * mi + 8, T - 1);
#pragma unroll
          for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              if (kv0 + 8 * n + 2 * t4 + (e & 1) > (e < 2 ? lim0 : lim1)) sc[mi][n][e] = -INFINITY;
            }
          }
        }
      }
      // Online softmax: row (mi, r) holds sc[mi][n][2r], sc[mi][n][2r + 1]; its 64 keys are spread
      // over the 4 lanes of the quad. p = 2^(s * scale_log2 - max * scale_log2).
#pragma unroll
      for (int mi = 0; mi < kMt; ++mi) {
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = sc[mi][0][2 * r];
#pragma unroll
          for (int n = 0; n < kBlockN / 8; ++n) mx = fmaxf(mx, fmaxf(sc[mi][n][2 * r], sc[mi][n][2 * r + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          mx = fmaxf(row_max[mi][r], mx * scale_log2);                // scale_log2 > 0 keeps the order
          const float base = mx == -INFINITY ? 0.f : mx;              // no (-inf) - (-inf)
          alpha[r] = Exp2(row_max[mi][r] - base);                     // 0 on the first visible tile
          row_max[mi][r] = mx;
          float sum = 0.f;
#pragma unroll
          for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) {
              sc[mi][n][e] = Exp2(fmaf(sc[mi][n][e], scale_log2, -base));
              sum += sc[mi][n][e];
            }
          }
          row_sum[mi][r] = row_sum[mi][r] * alpha[r] + sum;
        }
#pragma unroll
        for (int d = 0; d < kHd / 8; ++d) {
          o[mi][d][0] *= alpha[0];
          o[mi][d][1] *= alpha[0];
          o[mi][d][2] *= alpha[1];
          o[mi][d][3] *= alpha[1];
        }
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          pa[mi][kk][0] = PackHalf2(sc[mi][2 * kk][0], sc[mi][2 * kk][1]);
          pa[mi][kk][1] = PackHalf2(sc[mi][2 * kk][2], sc[mi][2 * kk][3]);
          pa[mi][kk][2] = PackHalf2(sc[mi][2 * kk + 1][0], sc[mi][2 * kk + 1][1]);
          pa[mi][kk][3] = PackHalf2(sc[mi][2 * kk + 1][2], sc[mi][2 * kk + 1][3]);
        }
      }
    }

    next_stage(j, 1);  // V_j (K_{j+1} may still be in flight)

    // O += P V, A = pa. B = V (k = key, n = dim) must be "col", i.e. two consecutive keys per
    // register: ldmatrix.trans of V rows as stored. Matrices (keys 0-7, chunk 2dp), (keys 8-15, 2dp),
    // (keys 0-7, 2dp+1), (keys 8-15, 2dp+1) give b0, b1 of dim n-tile 2dp then of 2dp + 1: lane i
    // addresses key 16kk + i % 16, chunk 2dp + i / 16. Each B fragment serves both m-tiles.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
#pragma unroll
      for (int dp = 0; dp < kHd / 16; ++dp) {
        uint32_t b[4];
        LdMatrixX4Trans(b, svt + kk * 16 * kHd * 2 + (v_off ^ (dp << 5)));
#pragma unroll
        for (int mi = 0; mi < kMt; ++mi) {
          Mma(o[mi][2 * dp], pa[mi][kk], b[0], b[1]);
          Mma(o[mi][2 * dp + 1], pa[mi][kk], b[2], b[3]);
        }
      }
    }
  }

  for (; j < n_tiles; ++j) next_stage(j, 0), next_stage(j, 1);

  // Normalize and stage the warp's 32 rows in its own rows of sq (only this warp read them, for
  // its Q fragments; no copy targets sq any more): lane writes (row, dims 8d + 2t..2t+1) of every
  // n-tile d, i.e. 4 bytes at offset 4t of chunk d. Then 16-byte coalesced stores of whole rows.
  __syncwarp();
#pragma unroll
  for (int mi = 0; mi < kMt; ++mi) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[mi][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      inv[r] = 1.f / sum;  // >= 1: the row's max key contributes 2^0
    }
    const int orow = wrow + 16 * mi + g;
#pragma unroll
    for (int d = 0; d < kHd / 8; ++d) {
      *reinterpret_cast<uint32_t*>(sq + Swz(orow, d) + 2 * t4) = PackHalf2(o[mi][d][0] * inv[0], o[mi][d][1] * inv[0]);
      *reinterpret_cast<uint32_t*>(sq + Swz(orow + 8, d) + 2 * t4) =
          PackHalf2(o[mi][d][2] * inv[1], o[mi][d][3] * inv[1]);
    }
  }
  __syncwarp();
#pragma unroll
  for (int i = 0; i < kMt * 8; ++i) {
    const int r = wrow + 2 * i + (lane >> 4), c = lane & 15;
    if (r < rows) {
      *reinterpret_cast<uint4*>(out + static_cast<size_t>(m0 + r) * q_stride + h * kHd + c * 8) =
          *reinterpret_cast<const uint4*>(sq + Swz(r, c));
    }
  }
}

// Raises kernel kMt's dynamic shared memory limit (over the 48 KB default) once per device.
template <int kMt>
cudaError_t EnsureSmemLimit() {
  constexpr int kMaxDevices = 64;
  static std::atomic<bool> done[kMaxDevices] = {};
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if (dev >= 0 && dev < kMaxDevices && done[dev].load(std::memory_order_acquire)) return cudaSuccess;
  err = cudaFuncSetAttribute(FlashPrefillKernel<kMt>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(SmemBytes(kMt)));
  if (err == cudaSuccess && dev >= 0 && dev < kMaxDevices) done[dev].store(true, std::memory_order_release);
  return err;
}

template <int kMt>
cudaError_t LaunchKernel(const __half* q, const __half* k_cache, const __half* v_cache, int slot, int start, int T,
                         const AttnShape& shape, __half* out, cudaStream_t stream) {
  const int q_blocks = (T + BlockM(kMt) - 1) / BlockM(kMt);
  if (q_blocks > 65535) return cudaErrorNotSupported;  // gridDim.y
  const cudaError_t err = EnsureSmemLimit<kMt>();
  if (err != cudaSuccess) return err;
  const float scale_log2 = 1.f / std::sqrt(static_cast<float>(kHd)) * 1.4426950408889634f;
  return Launch(FlashPrefillKernel<kMt>, dim3(shape.heads, q_blocks), dim3(kThreads), SmemBytes(kMt), stream, q,
                k_cache, v_cache, slot, start, T, shape, scale_log2, out);
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool FlashPrefillFits(const AttnShape& shape) {
  return shape.head_dim == kHd && shape.heads > 0 && shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0;
}

cudaError_t LaunchFlashPrefillAttention(const __half* q, const __half* k_cache, const __half* v_cache, int slot,
                                        int start, int T, const AttnShape& shape, __half* out, cudaStream_t stream) {
  if (!FlashPrefillFits(shape)) return cudaErrorNotSupported;
  if (!Aligned16(q) || !Aligned16(k_cache) || !Aligned16(v_cache) || !Aligned16(out)) return cudaErrorNotSupported;
  if (T <= 0) return cudaSuccess;
  if (slot < 0 || start < 0 || start + T > shape.max_ctx) return cudaErrorInvalidValue;
  // 128-row CTAs halve the shared-memory traffic per mma, but while all of them fit in one wave
  // (2 per SM: short prompts, e.g. T <= 1024 at 32 heads on 132 SMs) the twice as many 64-row
  // CTAs balance better (measured on an H200: 39 vs 45 us at T = 1024, 73 vs 84 us the other
  // way at T = 1536).
  const long long big_ctas = static_cast<long long>(shape.heads) * ((T + BlockM(2) - 1) / BlockM(2));
  if (big_ctas <= 2LL * SmCount()) {
    return LaunchKernel<1>(q, k_cache, v_cache, slot, start, T, shape, out, stream);
  }
  return LaunchKernel<2>(q, k_cache, v_cache, slot, start, T, shape, out, stream);
}

}  // namespace llama::kernels
