// GPTQ 4-bit GEMV (decode) and dequantization (prefill). Layout: kernels/README.md.
#include "kernels/gptq_matmul.h"

#include <cfloat>

#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 256;              // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kColsPerBlock = 128;         // 32 lanes x 4 columns (one 16-byte load)
constexpr int kWordsPerWarp = 8;           // 8 x 8 = 64 rows per warp
constexpr int kWordsPerBlock = kWarps * kWordsPerWarp;  // 512 rows of K per block (split-K)

__device__ __forceinline__ __half2 AsHalf2(uint32_t bits) { return *reinterpret_cast<__half2*>(&bits); }

__device__ __forceinline__ int TilesOf(const GptqSegment& s) {
  return (s.n_end - s.n_begin + kColsPerBlock - 1) / kColsPerBlock;
}

constexpr int kMaxAttnWeights = 2048;  // M * heads * splits that fit the shared-memory path (M <= 4)

// Input value at (row m, input index i); the fp16 rounding matches the standalone kernels.
// attn_w (kAttention, may be null): per (m, head, split) weight e^(max_s - max) / denominator.
__device__ __forceinline__ __half InputValue(const GemvInput& in, int K, int m, int i, float inv_rms,
                                             const float* attn_w) {
  switch (in.kind) {
    case GemvSource::kHalf:
      return in.x[static_cast<size_t>(m) * in.ldx + i];
    case GemvSource::kRmsNorm:
      return __float2half(in.src[static_cast<size_t>(m) * K + i] * inv_rms * in.norm_weight[i]);
    case GemvSource::kSwiGlu: {
      const float g = in.src[static_cast<size_t>(m) * 2 * K + i], u = in.src[static_cast<size_t>(m) * 2 * K + K + i];
      return __float2half(g / (1.f + expf(-g)) * u);
    }
    default: {  // kAttention
      const int heads = K / in.head_dim, h = i / in.head_dim, d = i % in.head_dim;
      const size_t first = (static_cast<size_t>(m) * heads + h) * in.attn_splits;
      if (attn_w) {
        float v = 0.f;
        for (int s = 0; s < in.attn_splits; ++s) v += attn_w[first + s] * in.attn_acc[(first + s) * in.head_dim + d];
        return __float2half(v);
      }
      float mx = -FLT_MAX;
      for (int s = 0; s < in.attn_splits; ++s) mx = fmaxf(mx, in.attn_ml[first + s].x);
      float num = 0.f, den = 0.f;
      for (int s = 0; s < in.attn_splits; ++s) {
        const float2 ml = in.attn_ml[first + s];
        if (ml.y > 0.f) {
          const float e = __expf(ml.x - mx);
          den += e * ml.y;
          num += e * in.attn_acc[(first + s) * in.head_dim + d];
        }
      }
      return __float2half(num / den);
    }
  }
}

// One block: 128 columns (of one segment) x 512 rows of K. Each thread streams 8 words of
// 4 columns (16-byte loads, evict-first), dequantizes two nibbles per LOP3 into half2
// (q | 0x6400 is the fp16 1024 + q), subtracts 1024 + zero exactly, multiplies by the
// activations in half2 over the 8 rows of a word, and accumulates word sums x scale in fp32.
// Warps are reduced through shared memory and added to `out` with atomics.
template <int M>
__global__ void __launch_bounds__(kThreads) GptqGemvKernel(GptqMatrix w, GemvInput in, float* __restrict__ out,
                                                           int ldo) {
  __shared__ uint4 xs[M][kWordsPerBlock];  // per word: half2 (x[8w+j], x[8w+j+4]) j = 0..3
  __shared__ float red[kWarps][M][kColsPerBlock];
  __shared__ float inv_rms[M];
  constexpr int kAttnWeights = M > 4 ? kMaxAttnWeights / 2 : kMaxAttnWeights;
  __shared__ float attn_w[kAttnWeights];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // This block's segment and column tile (compile-time indices keep w.seg in registers).
  int tile = blockIdx.x;
  GptqSegment seg = w.seg[0];
#pragma unroll
  for (int i = 0, found = 0; i < kMaxSegments; ++i) {
    const GptqSegment si = w.seg[i];
    const int t = TilesOf(si);
    const bool here = !found && i < w.num_segments && tile < t;
    if (here) seg = si;
    if (!found && !here) tile -= t;
    found |= here;
  }
  const int words = w.K / 8;
  const int w0 = blockIdx.y * kWordsPerBlock;
  const int nw = min(kWordsPerBlock, words - w0);
  const int n = seg.n_begin + tile * kColsPerBlock + lane * 4;
  const bool active = n < seg.n_end;

  // Weights do not depend on earlier kernels: start streaming them before waiting (PDL).
  const int wl0 = warp * kWordsPerWarp;
  uint4 q[kWordsPerWarp];
  if (active) {
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      if (wl0 + i < nw)
        q[i] = __ldcs(reinterpret_cast<const uint4*>(w.qweight + static_cast<size_t>(w0 + wl0 + i) * w.N + n));
    }
  }
  AllowDependents();
  WaitForPrerequisites();

  if (in.kind == GemvSource::kRmsNorm) {  // the whole row's mean square, per row
    for (int m = 0; m < M; ++m) {
      const float4* row = reinterpret_cast<const float4*>(in.src + static_cast<size_t>(m) * w.K);
      float ss = 0.f;
      for (int i = tid; i < w.K / 4; i += kThreads) {
        const float4 v = row[i];
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      }
      for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      if (lane == 0) red[warp][m][0] = ss;
    }
    __syncthreads();
    if (tid < M) {
      float t = 0.f;
      for (int wp = 0; wp < kWarps; ++wp) t += red[wp][tid][0];
      inv_rms[tid] = rsqrtf(t / w.K + in.eps);
    }
    __syncthreads();
  }
  const float* attn_weights = nullptr;
  if (in.kind == GemvSource::kAttention) {
    const int heads = w.K / in.head_dim, n_mh = M * heads;
    if (n_mh * in.attn_splits <= kAttnWeights) {  // split weights once per (row, head)
      for (int mh = tid; mh < n_mh; mh += kThreads) {
        const size_t first = static_cast<size_t>(mh) * in.attn_splits;
        float mx = -FLT_MAX, den = 0.f;
        for (int s = 0; s < in.attn_splits; ++s) mx = fmaxf(mx, in.attn_ml[first + s].x);
        for (int s = 0; s < in.attn_splits; ++s) {
          const float2 ml = in.attn_ml[first + s];
          const float e = ml.y > 0.f ? __expf(ml.x - mx) : 0.f;
          attn_w[first + s] = e;
          den += e * ml.y;
        }
        const float inv = 1.f / den;
        for (int s = 0; s < in.attn_splits; ++s) attn_w[first + s] *= inv;
      }
      __syncthreads();
      attn_weights = attn_w;
    }
  }
  // The block's slice of x, permuted (act order) and in word-pair order.
  for (int m = 0; m < M; ++m) {
    const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[m] : 1.f;
    for (int r = tid; r < nw * 8; r += kThreads) {
      const int k = w0 * 8 + r;
      const int src = seg.perm ? seg.perm[k] : k;
      const int j = r & 7;
      reinterpret_cast<__half*>(&xs[m][r >> 3])[(j & 3) * 2 + (j >> 2)] = InputValue(in, w.K, m, src, inv, attn_weights);
    }
  }
  __syncthreads();

  float acc[M][4];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[m][c] = 0.f;

  if (active) {
    int cur_g = -1;
    float s[4];
    __half2 z2[4];
#pragma unroll
    for (int i = 0; i < kWordsPerWarp; ++i) {
      const int wl = wl0 + i;
      if (wl >= nw) break;
      const int g = __ldg(seg.word_group + w0 + wl);
      if (g != cur_g) {  // scales and zeros change once per group, not per word
        cur_g = g;
        const uint2 sbits = __ldg(reinterpret_cast<const uint2*>(w.scales + static_cast<size_t>(g) * w.N + n));
        const uint32_t zbits = __ldg(reinterpret_cast<const uint32_t*>(w.zeros + static_cast<size_t>(g) * w.N + n));
        const float2 s01 = __half22float2(AsHalf2(sbits.x)), s23 = __half22float2(AsHalf2(sbits.y));
        s[0] = s01.x;
        s[1] = s01.y;
        s[2] = s23.x;
        s[3] = s23.y;
#pragma unroll
        for (int c = 0; c < 4; ++c) z2[c] = AsHalf2((0x6400u + ((zbits >> (8 * c)) & 0xffu)) * 0x00010001u);
      }
      const uint32_t qw[4] = {q[i].x, q[i].y, q[i].z, q[i].w};
      uint4 xv[M];
#pragma unroll
      for (int m = 0; m < M; ++m) xv[m] = xs[m][wl];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        __half2 d[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) d[j] = __hsub2(AsHalf2(((qw[c] >> (4 * j)) & 0x000F000Fu) | 0x64006400u), z2[c]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          __half2 a = __hmul2(d[0], AsHalf2(xv[m].x));
          a = __hfma2(d[1], AsHalf2(xv[m].y), a);
          a = __hfma2(d[2], AsHalf2(xv[m].z), a);
          a = __hfma2(d[3], AsHalf2(xv[m].w), a);
          const float2 f = __half22float2(a);
          acc[m][c] = fmaf(s[c], f.x + f.y, acc[m][c]);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int c = 0; c < 4; ++c) red[warp][m][lane * 4 + c] = acc[m][c];
  __syncthreads();
  for (int idx = tid; idx < M * kColsPerBlock; idx += kThreads) {
    const int m = idx / kColsPerBlock, col = idx % kColsPerBlock;
    const int nn = seg.n_begin + tile * kColsPerBlock + col;
    if (nn >= seg.n_end) continue;
    float sum = 0.f;
#pragma unroll
    for (int wp = 0; wp < kWarps; ++wp) sum += red[wp][m][col];
    atomicAdd(out + static_cast<size_t>(m) * ldo + nn, sum);
  }
}

// Thread: one packed word (8 rows) x 4 columns; 8-byte stores, coalesced along N.
__global__ void GptqDequantKernel(GptqMatrix w, __half* __restrict__ dst) {
  AllowDependents();
  WaitForPrerequisites();  // dst may still be read by the previous GEMM
  const int n = (blockIdx.x * blockDim.x + threadIdx.x) * 4;
  const int word = blockIdx.y;
  if (n >= w.N) return;
  GptqSegment seg = w.seg[0];
#pragma unroll
  for (int i = 1; i < kMaxSegments; ++i) {
    const GptqSegment si = w.seg[i];
    if (i < w.num_segments && n >= si.n_begin) seg = si;
  }
  const uint4 q = __ldcs(reinterpret_cast<const uint4*>(w.qweight + static_cast<size_t>(word) * w.N + n));
  const int g = seg.word_group[word];
  const uint2 sbits = *reinterpret_cast<const uint2*>(w.scales + static_cast<size_t>(g) * w.N + n);
  const uint32_t zbits = *reinterpret_cast<const uint32_t*>(w.zeros + static_cast<size_t>(g) * w.N + n);
  const float2 s01 = __half22float2(AsHalf2(sbits.x)), s23 = __half22float2(AsHalf2(sbits.y));
  const float s[4] = {s01.x, s01.y, s23.x, s23.y};
  const uint32_t qw[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int k = word * 8 + i;
    const int row = seg.perm ? seg.perm[k] : k;
    __half v[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int qi = (qw[c] >> (4 * i)) & 15, z = (zbits >> (8 * c)) & 0xff;
      v[c] = __float2half(s[c] * static_cast<float>(qi - z));
    }
    *reinterpret_cast<uint2*>(dst + static_cast<size_t>(row) * w.N + n) = *reinterpret_cast<const uint2*>(v);
  }
}

template <int M>
cudaError_t Gemv(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, cudaStream_t s) {
  int tiles = 0;
  for (int i = 0; i < w.num_segments; ++i)
    tiles += (w.seg[i].n_end - w.seg[i].n_begin + kColsPerBlock - 1) / kColsPerBlock;
  const dim3 grid(tiles, (w.K / 8 + kWordsPerBlock - 1) / kWordsPerBlock);
  return Launch(GptqGemvKernel<M>, grid, dim3(kThreads), 0, s, w, in, out, ldo);
}

}  // namespace

cudaError_t LaunchGptqGemv(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, int M,
                           cudaStream_t stream) {
  if (w.K % 8 != 0 || w.N % 4 != 0 || M < 1 || M > kGemvMaxRows || w.num_segments < 1 ||
      w.num_segments > kMaxSegments)
    return cudaErrorInvalidValue;
  if (in.kind == GemvSource::kRmsNorm && w.K % 4 != 0) return cudaErrorInvalidValue;
  switch (M) {
    case 1: return Gemv<1>(w, in, out, ldo, stream);
    case 2: return Gemv<2>(w, in, out, ldo, stream);
    case 3: return Gemv<3>(w, in, out, ldo, stream);
    case 4: return Gemv<4>(w, in, out, ldo, stream);
    case 5: return Gemv<5>(w, in, out, ldo, stream);
    case 6: return Gemv<6>(w, in, out, ldo, stream);
    case 7: return Gemv<7>(w, in, out, ldo, stream);
    default: return Gemv<8>(w, in, out, ldo, stream);
  }
}

cudaError_t LaunchGptqDequant(const GptqMatrix& w, __half* dst, cudaStream_t stream) {
  if (w.K % 8 != 0) return cudaErrorInvalidValue;
  if (w.N % 4 != 0) return cudaErrorInvalidValue;
  const dim3 grid((w.N / 4 + 127) / 128, w.K / 8);
  return Launch(GptqDequantKernel, grid, dim3(128), 0, stream, w, dst);
}

}  // namespace llama::kernels
