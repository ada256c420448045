// Dense fp16 GEMV (decode) and the cuBLAS GEMM wrapper (prefill).
#include "kernels/dense_matmul.h"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

constexpr int kThreads = 256;

template <int M>
__global__ void __launch_bounds__(kThreads) DenseGemvKernel(const __half* __restrict__ w, int K, int N,
                                                            const __half* __restrict__ x, int ldx,
                                                            float* __restrict__ out, int ldo, bool accumulate) {
  AllowDependents();
  WaitForPrerequisites();
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
  if (n >= N) return;
  const __half* row = w + static_cast<size_t>(n) * K;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  for (int k = lane * 8; k < K; k += 32 * 8) {
    const uint4 wv = __ldcs(reinterpret_cast<const uint4*>(row + k));
    const __half2* wh = reinterpret_cast<const __half2*>(&wv);
    float2 wf[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) wf[j] = __half22float2(wh[j]);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(m) * ldx + k));
      const __half2* xh = reinterpret_cast<const __half2*>(&xv);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 xf = __half22float2(xh[j]);
        acc[m] = fmaf(wf[j].x, xf.x, acc[m]);
        acc[m] = fmaf(wf[j].y, xf.y, acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v = acc[m];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) {
      float* dst = out + static_cast<size_t>(m) * ldo + n;
      *dst = accumulate ? *dst + v : v;
    }
  }
}

template <int M>
cudaError_t DenseGemv(const __half* w, int K, int N, const __half* x, int ldx, float* out, int ldo,
                      bool accumulate, cudaStream_t s) {
  const int rows_per_block = kThreads / 32;
  return Launch(DenseGemvKernel<M>, dim3((N + rows_per_block - 1) / rows_per_block), dim3(kThreads), 0, s, w, K, N,
                x, ldx, out, ldo, accumulate);
}

}  // namespace

cudaError_t LaunchDenseGemv(const __half* w, int K, int N, const __half* x, int ldx, float* out,
                            int ldo, int M, bool accumulate, cudaStream_t stream) {
  if (K % 8 != 0 || ldx % 8 != 0 || M < 1 || M > 8) return cudaErrorInvalidValue;
  switch (M) {
    case 1: return DenseGemv<1>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 2: return DenseGemv<2>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 3: return DenseGemv<3>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 4: return DenseGemv<4>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 5: return DenseGemv<5>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 6: return DenseGemv<6>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    case 7: return DenseGemv<7>(w, K, N, x, ldx, out, ldo, accumulate, stream);
    default: return DenseGemv<8>(w, K, N, x, ldx, out, ldo, accumulate, stream);
  }
}

cublasStatus_t GemmF16(cublasHandle_t handle, int M, int N, int K, const __half* a, int lda,
                       const __half* b, int ldb, bool b_is_nk, float* c, int ldc, float alpha,
                       float beta) {
  // Column-major view: C^T [N, M] = op(B)^T [N, K] x A^T [K, M].
  // B [K, N] row-major is col-major N x K (no transpose); B [N, K] row-major is col-major
  // K x N, so it needs a transpose.
  return cublasGemmEx(handle, b_is_nk ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &alpha, b,
                      CUDA_R_16F, ldb, a, CUDA_R_16F, lda, &beta, c, CUDA_R_32F, ldc,
                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t GemmF16Half(cublasHandle_t handle, int M, int N, int K, const __half* a, int lda,
                           const __half* b, int ldb, bool b_is_nk, __half* c, int ldc) {
  const float one = 1.f, zero = 0.f;
  return cublasGemmEx(handle, b_is_nk ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, b, CUDA_R_16F, ldb,
                      a, CUDA_R_16F, lda, &zero, c, CUDA_R_16F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace llama::kernels
