// Dense fp16 matmul for unquantized projections and the lm_head: W is [N, K] row-major
// (Hugging Face's [out, in]), x fp16 [M, K], out fp32 [M, N].
//   - M <= 8: LaunchDenseGemv, one warp per output column, 16-byte loads, fp32 accumulation.
//   - any M:  GemmF16 (cuBLAS GemmEx on tensor cores, fp32 compute), also used for the
//             dequantized GPTQ weights of the prefill path.
#pragma once

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace llama::kernels {

// out[m * ldo + n] = (accumulate ? out : 0) + sum_k x[m * ldx + k] * w[n * K + k]; K % 8 == 0.
cudaError_t LaunchDenseGemv(const __half* w, int K, int N, const __half* x, int ldx, float* out,
                            int ldo, int M, bool accumulate, cudaStream_t stream);

// Row-major C[M, N] (fp32, ldc) = alpha * A[M, K] (fp16, lda) · B + beta * C, where B is
// [K, N] row-major (ldb) when !b_is_nk, or [N, K] row-major (ldb) when b_is_nk.
cublasStatus_t GemmF16(cublasHandle_t handle, int M, int N, int K, const __half* a, int lda,
                       const __half* b, int ldb, bool b_is_nk, float* c, int ldc, float alpha,
                       float beta);

// The same product rounded to fp16 (C = A · B, no accumulation): half the bytes written, and
// half read by the consumer (prefill q|k|v and gate|up, CudaOptions::prefill_half_outputs).
cublasStatus_t GemmF16Half(cublasHandle_t handle, int M, int N, int K, const __half* a, int lda,
                           const __half* b, int ldb, bool b_is_nk, __half* c, int ldc);

}  // namespace llama::kernels
