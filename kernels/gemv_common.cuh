// Device helpers shared by the GPTQ GEMV kernels (gptq_matmul.cu, gptq_gemv_stream.cu,
// gptq_gemv_warp.cu): the tensor-core MMA and per-tile accumulator, and the prologue that
// computes the GEMV's input x from the previous op's output (GemvInput in gptq_matmul.h).
// Included by .cu files only.
#pragma once

#include <cuda_fp16.h>

#include <cfloat>
#include <cstdint>

#include "kernels/gptq_matmul.h"

namespace llama::kernels::gemv {

constexpr int kThreads = 256;  // every GEMV block: 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kMaxAttnWeights = 2048;  // M * heads * splits that fit the shared-memory path (M <= 4)

__device__ __forceinline__ __half2 AsHalf2(uint32_t bits) { return *reinterpret_cast<__half2*>(&bits); }
__device__ __forceinline__ uint32_t AsBits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }

// D = A(16x16, fp16) * B(16x8, fp16) + D, fp32 accumulation.
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// One lane's share of a 16-column tile in the tensor-core layout (kernels/README.md): A
// fragments dequantized from 4-bit words with four LOP3 and one shift — rows g exactly
// (q - z), rows g + 8 as 16 (q - z), the factor folded into that row's scale — two chains of
// mma for the current group, and the scaled sums acc: (n0, m = 2t), (n0, 2t + 1), (n1, 2t),
// (n1, 2t + 1), with n0 = 16 tile + lane / 4, n1 = n0 + 8, t = lane % 4.
struct MmaTileAccumulator {
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  float cg[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  float s0 = 0.f, s1 = 0.f;
  uint32_t z0 = 0, z1 = 0;

  // Scales the current group's sums into acc (call before switching groups).
  __device__ __forceinline__ void CloseGroup() {
    acc[0] = fmaf(s0, cg[0][0] + cg[1][0], acc[0]);
    acc[1] = fmaf(s0, cg[0][1] + cg[1][1], acc[1]);
    acc[2] = fmaf(s1, cg[0][2] + cg[1][2], acc[2]);
    acc[3] = fmaf(s1, cg[0][3] + cg[1][3], acc[3]);
#pragma unroll
    for (int j = 0; j < 4; ++j) cg[0][j] = cg[1][j] = 0.f;
  }
  // The group's fp16 scales and real zero points of columns n0 and n1.
  __device__ __forceinline__ void SetGroup(float scale0, float scale1, uint32_t zero0, uint32_t zero1) {
    s0 = scale0;
    s1 = scale1 * (1.f / 16.f);
    z0 = (0x6400u + zero0) * 0x00010001u;        // 1024 + z
    z1 = (0x6400u + 16u * zero1) * 0x00010001u;  // 1024 + 16 z
  }
  // One 16x16 k-tile: the lane's 4-bit word and its B fragment (b0, b1), on mma chain `chain`.
  __device__ __forceinline__ void Add(int chain, uint32_t wd, uint32_t b0, uint32_t b1) {
    const uint32_t w8 = wd >> 8;
    const uint32_t a[4] = {AsBits(__hsub2(AsHalf2((wd & 0x000F000Fu) | 0x64006400u), AsHalf2(z0))),
                           AsBits(__hsub2(AsHalf2((wd & 0x00F000F0u) | 0x64006400u), AsHalf2(z1))),
                           AsBits(__hsub2(AsHalf2((w8 & 0x000F000Fu) | 0x64006400u), AsHalf2(z0))),
                           AsBits(__hsub2(AsHalf2((w8 & 0x00F000F0u) | 0x64006400u), AsHalf2(z1)))};
    Mma16816(cg[chain], a, b0, b1);
  }
  // Adds acc into out (rows m < M) and clears it.
  __device__ __forceinline__ void Store(float* out, int ldo, int M, int n0, int t) {
    const int n1 = n0 + 8;
    if (2 * t < M) {
      atomicAdd(out + static_cast<size_t>(2 * t) * ldo + n0, acc[0]);
      atomicAdd(out + static_cast<size_t>(2 * t) * ldo + n1, acc[2]);
    }
    if (2 * t + 1 < M) {
      atomicAdd(out + static_cast<size_t>(2 * t + 1) * ldo + n0, acc[1]);
      atomicAdd(out + static_cast<size_t>(2 * t + 1) * ldo + n1, acc[3]);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[j] = 0.f;
  }
};

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
      if (attn_w) {  // a zero weight is an empty split: its acc is not written
        float v = 0.f;
#pragma unroll 8
        for (int s = 0; s < in.attn_splits; ++s) {
          const float wgt = attn_w[first + s];
          if (wgt > 0.f) v += wgt * in.attn_acc[(first + s) * in.head_dim + d];
        }
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

// The threads' shares of the row's squares summed over the block as the RMSNorm scale
// 1 / sqrt(mean + eps), returned to every thread (one block barrier). The warp GEMV's one-trip and row-gather
// staging use it, and BlockInvRms below for each row.
__device__ __forceinline__ float BlockRmsScale(float ss, int K, float eps, float* red) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (lane == 0) red[warp] = ss;
  __syncthreads();
  float tot = 0.f;
  for (int wp = 0; wp < kWarps; ++wp) tot += red[wp];
  return rsqrtf(tot / K + eps);
}

// kRmsNorm: inv_rms[m] = rsqrt(mean(src[m, :]^2) + eps) for m < M (whole block; red holds
// kWarps floats). Other kinds: nothing. Ends with a barrier.
template <int M>
__device__ __forceinline__ void BlockInvRms(const GemvInput& in, int K, float* red, float* inv_rms) {
  if (in.kind != GemvSource::kRmsNorm) return;
  for (int m = 0; m < M; ++m) {
    const float4* row = reinterpret_cast<const float4*>(in.src + static_cast<size_t>(m) * K);
    float ss = 0.f;
#pragma unroll 4
    for (int i = threadIdx.x; i < K / 4; i += kThreads) {
      const float4 v = row[i];
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    const float inv = BlockRmsScale(ss, K, in.eps, red);
    if (threadIdx.x == 0) inv_rms[m] = inv;
    __syncthreads();  // inv_rms published; red free for the next row
  }
}

// kAttention: the combine weights of every (row, head, split) into attn_w (capacity `cap`),
// once per block; returns attn_w, or null when they do not fit (InputValue then combines on
// its own). Other kinds: null. Ends with a barrier when it returns non-null.
__device__ __forceinline__ const float* BlockAttnWeights(const GemvInput& in, int K, int M, float* attn_w, int cap) {
  if (in.kind != GemvSource::kAttention) return nullptr;
  const int n_mh = M * (K / in.head_dim);
  if (n_mh * in.attn_splits > cap) return nullptr;
  for (int mh = threadIdx.x; mh < n_mh; mh += kThreads) {
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
  return attn_w;
}

// The segment that GEMV column tile `tile` (of `tile_cols` columns, counted across segments)
// falls in; `tile` becomes the index within that segment. Unrolled so w.seg stays in registers.
__device__ __forceinline__ GptqSegment FindSegment(const GptqMatrix& w, int tile_cols, int* tile) {
  GptqSegment seg = w.seg[0];
#pragma unroll
  for (int i = 0, found = 0; i < kMaxSegments; ++i) {
    const GptqSegment si = w.seg[i];
    const int t = (si.n_end - si.n_begin + tile_cols - 1) / tile_cols;
    const bool here = !found && i < w.num_segments && *tile < t;
    if (here) seg = si;
    if (!found && !here) *tile -= t;
    found |= here;
  }
  return seg;
}

// The streaming GEMV (gptq_gemv_stream.cu); cudaErrorNotSupported when the matrix, M or the
// tuning do not suit it (the caller then runs the split-K kernels).
cudaError_t LaunchGptqGemvStream(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, int M,
                                 const GemvTuning& tu,
                                 cudaStream_t stream);

}  // namespace llama::kernels::gemv
