#include "kernels/attention.h"

#include "kernels/attention_common.cuh"
#include "kernels/launch.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace llama::kernels {
namespace {

constexpr int kThreads = kAttnSplitKeys;  // one key per thread when scoring

__device__ __forceinline__ float BlockReduce(float v, float* sh, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = sh[0];
  for (int w = 1; w < kThreads / 32; ++w) r = is_max ? fmaxf(r, sh[w]) : r + sh[w];
  return r;
}

// One split of keys [k0, k0 + nk) for (row m, head h): writes *ml_out = (max, sum) and
// acc_out[hd] (unnormalized P V).
__device__ __forceinline__ void SplitPartial(const __half* __restrict__ q, const __half* __restrict__ k_cache,
                                             const __half* __restrict__ v_cache, int slot, const AttnShape& s, int m,
                                             int h, int kvh, int k0, int nk, float* p, float* red, float* accs,
                                             float2* ml_out, float* acc_out) {
  const int hd = s.head_dim;
  const size_t row_stride = static_cast<size_t>(s.kv_heads) * hd;
  const size_t base = (static_cast<size_t>(slot) * s.max_ctx) * row_stride + kvh * hd;

  // Rows are read cooperatively: tpr = hd / 8 threads cover one row with 16-byte loads
  // (hd / 8 is a power of two <= 32), kThreads / tpr rows per pass.
  const int tpr = hd / 8, par = kThreads / tpr;
  const int d0 = (threadIdx.x % tpr) * 8, r0 = threadIdx.x / tpr;
  const float scale = rsqrtf(static_cast<float>(hd));
  float qf[8];
  {
    const uint4 qv = *reinterpret_cast<const uint4*>(q + (static_cast<size_t>(m) * s.heads + h) * hd + d0);
    const __half2* qh = reinterpret_cast<const __half2*>(&qv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __half22float2(qh[j]);
      qf[2 * j] = f.x * scale;
      qf[2 * j + 1] = f.y * scale;
    }
  }
#pragma unroll 4
  for (int r_base = 0; r_base < nk; r_base += par) {
    const int r = r_base + r0;
    float dot = r < nk ? DotEight(qf, k_cache + base + (k0 + r) * row_stride + d0) : 0.f;
    for (int o = tpr / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (r < nk && d0 == 0) p[r] = dot;
  }
  __syncthreads();
  const float score = threadIdx.x < nk ? p[threadIdx.x] : -FLT_MAX;
  const float mx = BlockReduce(score, red, true);
  const float e = threadIdx.x < nk ? __expf(score - mx) : 0.f;
  __syncthreads();  // every thread has read its score from p[]
  p[threadIdx.x] = e;
  const float sum = BlockReduce(e, red, false);  // its barriers also publish p[]

  // P·V: tpr threads cover one row (8 dims each); kThreads / tpr rows in parallel.
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (r0 < par) {
    for (int r = r0; r < nk; r += par) AxpyEight(p[r], v_cache + base + (k0 + r) * row_stride + d0, acc);
  }
  // accs[r0][d]: par x hd floats = kThreads * 8.
  if (r0 < par) {
#pragma unroll
    for (int j = 0; j < 8; ++j) accs[r0 * hd + d0 + j] = acc[j];
  }
  __syncthreads();
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float v = 0.f;
    for (int r = 0; r < par; ++r) v += accs[r * hd + d];
    acc_out[d] = v;
  }
  if (threadIdx.x == 0) *ml_out = make_float2(mx, sum);
}

// grid (splits, H, rows)
__global__ void __launch_bounds__(kThreads) DecodeAttentionKernel(
    const __half* __restrict__ q, const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
    const int32_t* __restrict__ slot, const int32_t* __restrict__ pos, AttnShape s,
    int split_keys, float2* __restrict__ partial_ml, float* __restrict__ partial_acc, float* zero,
    size_t zero_count, __half* __restrict__ combined, uint32_t* __restrict__ arrivals) {
  AllowDependents();
  WaitForPrerequisites();
  ZeroByGrid(zero, zero_count);
  const int split = blockIdx.x, h = blockIdx.y, m = blockIdx.z, splits = gridDim.x;
  const int hd = s.head_dim;
  const int kvh = h / (s.heads / s.kv_heads);
  const int n_keys = pos[m] + 1;
  const int k0 = split * split_keys;
  const size_t part = (static_cast<size_t>(m) * s.heads + h) * splits + split;
  float* acc_out = partial_acc + part * hd;
  __shared__ float p[kAttnSplitKeys];
  __shared__ float red[kThreads / 32];
  __shared__ float accs[kThreads * 8];
  if (k0 >= n_keys) {
    if (threadIdx.x == 0) partial_ml[part] = make_float2(-FLT_MAX, 0.f);
    for (int d = threadIdx.x; d < hd; d += kThreads) acc_out[d] = 0.f;
  } else {
    SplitPartial(q, k_cache, v_cache, slot[m], s, m, h, kvh, k0, min(split_keys, n_keys - k0), p, red, accs,
                 partial_ml + part, acc_out);
  }
  // The last split of this (row, head) to finish merges all of them: no separate combine kernel.
  if (combined) CombineIfLastSplit(partial_ml, partial_acc, arrivals, m, h, s.heads, splits, hd, combined);
}

// grid (H, rows)
__global__ void CombineKernel(const float2* __restrict__ partial_ml, const float* __restrict__ partial_acc,
                              int splits, int heads, int hd, __half* __restrict__ out) {
  AllowDependents();
  WaitForPrerequisites();
  const int h = blockIdx.x, m = blockIdx.y;
  const size_t first = (static_cast<size_t>(m) * heads + h) * splits;
  CombineHead(partial_ml, partial_acc, first, splits, hd, out + first / splits * hd);
}

// Causal softmax over S rows: batch b (kv head), query t: keys 0..start+t valid.
// grid (ceil(T / 8), KVH), 256 threads: one warp per row, 8 rows per block. With `cached`, the
// row is kept in shared memory (8 x Lk floats, dynamic) from the max pass on and the exps are
// computed once: S is read once. One block per row with block-wide barriers was
// latency-bound (12 ms of a 2048-token prefill, tests/bench/RESULTS.md, sessions 3 and 5).
// Each lane reads back only what it wrote (same j stride): no barrier at all.
constexpr int kSoftmaxRows = 8;
__global__ void __launch_bounds__(256) CausalSoftmaxKernel(const float* __restrict__ S, __half* __restrict__ P, int T,
                                                           int Lk, int start, float scale, bool cached) {
  AllowDependents();
  WaitForPrerequisites();
  extern __shared__ float srows[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kSoftmaxRows + warp, b = blockIdx.y;
  if (t >= T) return;
  const size_t off = (static_cast<size_t>(b) * T + t) * Lk;
  const float* row = S + off;
  __half* prow = P + off;
  float* srow = srows + static_cast<size_t>(warp) * Lk;
  const int valid = min(Lk, start + t + 1);
  float mx = -FLT_MAX;
#pragma unroll 8
  for (int j = lane; j < valid; j += 32) {
    const float v = row[j];
    if (cached) srow[j] = v;
    mx = fmaxf(mx, v);
  }
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
#pragma unroll 8
  for (int j = lane; j < valid; j += 32) {
    const float e = __expf(((cached ? srow[j] : row[j]) - mx) * scale);
    if (cached) srow[j] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float inv = 1.f / sum;
#pragma unroll 8
  for (int j = lane; j < Lk; j += 32) {
    const float e = j >= valid ? 0.f : cached ? srow[j] : __expf((row[j] - mx) * scale);
    prow[j] = __float2half(e * inv);
  }
}

constexpr size_t kSoftmaxSmem = 192 * 1024;  // 8 rows of up to 6144 keys are cached

}  // namespace

cudaError_t LaunchDecodeAttention(const __half* q, const __half* k_cache, const __half* v_cache,
                                  const int32_t* slot, const int32_t* pos, const AttnShape& shape,
                                  int rows, int splits, int split_keys, float2* partial_ml,
                                  float* partial_acc, cudaStream_t stream, float* zero, size_t zero_count,
                                  __half* combined, uint32_t* arrivals) {
  if (rows <= 0) return cudaSuccess;
  if (combined && !arrivals) return cudaErrorInvalidValue;
  if (split_keys < 1 || split_keys > kAttnSplitKeys) return cudaErrorInvalidValue;
  const int tpr = shape.head_dim / 8;
  if (shape.head_dim % 8 != 0 || (tpr & (tpr - 1)) != 0 || shape.head_dim > kMaxHeadDim || shape.heads % shape.kv_heads != 0 ||
      splits < 1)
    return cudaErrorInvalidValue;
  return Launch(DecodeAttentionKernel, dim3(splits, shape.heads, rows), dim3(kThreads), 0, stream, q, k_cache,
                v_cache, slot, pos, shape, split_keys, partial_ml, partial_acc, zero, zero_count, combined, arrivals);
}

cudaError_t LaunchAttentionCombine(const float2* partial_ml, const float* partial_acc, const AttnShape& shape,
                                   int rows, int splits, __half* out, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  return Launch(CombineKernel, dim3(shape.heads, rows), dim3(128), 0, stream, partial_ml, partial_acc, splits,
                shape.heads, shape.head_dim, out);
}

size_t PrefillAttentionScratchBytes(const AttnShape& shape, int q_rows) {
  return static_cast<size_t>(shape.kv_heads) * q_rows * shape.max_ctx * (sizeof(float) + sizeof(__half));
}

cudaError_t LaunchPrefillAttention(cublasHandle_t handle, const __half* q, const __half* k_cache,
                                   const __half* v_cache, int slot, int start, int T,
                                   const AttnShape& shape, int q_block, void* scratch, __half* out,
                                   cudaStream_t stream) {
  const int H = shape.heads, KVH = shape.kv_heads, hd = shape.head_dim, g = H / KVH;
  const size_t row_stride = static_cast<size_t>(KVH) * hd;
  const __half* kb = k_cache + static_cast<size_t>(slot) * shape.max_ctx * row_stride;
  const __half* vb = v_cache + static_cast<size_t>(slot) * shape.max_ctx * row_stride;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  const float one = 1.f, zero = 0.f;
  if (cublasSetStream(handle, stream) != CUBLAS_STATUS_SUCCESS) return cudaErrorUnknown;
  static const cudaError_t attr = cudaFuncSetAttribute(CausalSoftmaxKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(kSoftmaxSmem));
  if (attr != cudaSuccess) return attr;
  for (int t0 = 0; t0 < T; t0 += q_block) {
    const int tb = std::min(q_block, T - t0);
    const int Lk = start + t0 + tb;  // keys visible to the last row of this block
    float* S = static_cast<float*>(scratch);
    __half* P = reinterpret_cast<__half*>(S + static_cast<size_t>(KVH) * tb * Lk);
    for (int i = 0; i < g; ++i) {
      // S[b] (col-major Lk x tb) = K_b^T (Lk x hd) * Q_{b*g+i} (hd x tb)
      const __half* qb = q + static_cast<size_t>(t0) * H * hd + i * hd;
      cublasStatus_t st = cublasGemmStridedBatchedEx(
          handle, CUBLAS_OP_T, CUBLAS_OP_N, Lk, tb, hd, &one, kb, CUDA_R_16F, row_stride, hd, qb, CUDA_R_16F,
          H * hd, static_cast<long long>(g) * hd, &zero, S, CUDA_R_32F, Lk, static_cast<long long>(Lk) * tb, KVH,
          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      if (st != CUBLAS_STATUS_SUCCESS) return cudaErrorUnknown;
      const size_t rows_bytes = static_cast<size_t>(kSoftmaxRows) * Lk * sizeof(float);
      const bool cached = rows_bytes <= kSoftmaxSmem;
      cudaError_t err = Launch(CausalSoftmaxKernel, dim3((tb + kSoftmaxRows - 1) / kSoftmaxRows, KVH), dim3(256),
                               cached ? rows_bytes : 0, stream, S, P, tb, Lk, start + t0, scale, cached);
      if (err != cudaSuccess) return err;
      // O_{b*g+i} (col-major hd x tb) = V_b (hd x Lk) * P_b (Lk x tb)
      __half* ob = out + static_cast<size_t>(t0) * H * hd + i * hd;
      st = cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, hd, tb, Lk, &one, vb, CUDA_R_16F,
                                      row_stride, hd, P, CUDA_R_16F, Lk, static_cast<long long>(Lk) * tb, &zero,
                                      ob, CUDA_R_16F, H * hd, static_cast<long long>(g) * hd, KVH,
                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      if (st != CUBLAS_STATUS_SUCCESS) return cudaErrorUnknown;
    }
  }
  return cudaGetLastError();
}

}  // namespace llama::kernels
