// GPTQ 4-bit matmul: y[M, N] (+)= x[M, K] · W[K, N], W in the packed layout documented in
// kernels/README.md (AutoGPTQ nibble packing along K, rows already act-order sorted so each
// group is contiguous, fp16 scales, uint8 zero points, one group index per 8-row word).
//   - decode (M <= 8): LaunchGptqGemv, split-K GEMV streaming 16-byte weight loads; it
//     ATOMICALLY ADDS into fp32 `out` (zero it first, or point it at the residual stream).
//   - prefill (M > 8): LaunchGptqDequant writes W as fp16 [K, N] in ORIGINAL row order
//     (perm applied), then LaunchGemmF16 (gemm.h) runs cuBLAS on tensor cores.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

struct GptqMatrix {
  int K = 0, N = 0;                      // K % 8 == 0, N % 4 == 0
  const uint32_t* qweight = nullptr;     // [K/8, N]: nibble i of word (w, n) = row 8w+i
  const __half* scales = nullptr;        // [groups, N]
  const uint8_t* zeros = nullptr;        // [groups, N], real zero point 0..16
  const uint16_t* word_group = nullptr;  // [K/8]: group of rows 8w..8w+7
  const int32_t* perm = nullptr;         // [K] x_perm[k] = x[perm[k]], or null (identity)
};

constexpr int kGemvMaxRows = 8;

// out[m * ldo + n] += sum_k x[m * ldx + perm[k]] * W[k, n] for m < M (1..8).
cudaError_t LaunchGptqGemv(const GptqMatrix& w, const __half* x, int ldx, float* out, int ldo,
                           int M, cudaStream_t stream);

// dst[perm[k] * N + n] = scale * (q - zero) as fp16: the dense weight in original row order.
cudaError_t LaunchGptqDequant(const GptqMatrix& w, __half* dst, cudaStream_t stream);

}  // namespace llama::kernels
