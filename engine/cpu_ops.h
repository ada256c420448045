// The CPU backend's math, in fp32: each helper is a few lines and named for the math.
// Row-major activations: x[m * K + k] for M rows.
#pragma once

#include "engine/thread_pool.h"
#include "engine/weights.h"

namespace llama::cpu {

// y[M, N] = x[M, K] · W for a projection (GPTQ: dequantized on the fly, group by group,
// act-order activations gathered through `perm`; dense: W = dense^T).
void MatMul(ThreadPool& pool, const Linear& w, const float* x, int M, float* y);

// out = x / rms(x) * weight, per row of width n.
void RmsNorm(const float* x, const float* weight, int n, float eps, float* out);

// Rotate-half RoPE (HF Llama) on one head vector of width head_dim at position pos.
void Rope(float* v, int head_dim, int pos, float theta);

// In-place softmax over n values.
void Softmax(float* x, int n);

// SiLU(gate) * up, elementwise.
void SwiGlu(const float* gate, const float* up, int n, float* out);

}  // namespace llama::cpu
