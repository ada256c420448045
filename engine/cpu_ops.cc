#include "engine/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace llama::cpu {
namespace {

constexpr int kColumnBlock = 64;  // output columns per task: accumulators stay in L1

// GPTQ: for each group, acc[m][n] = Σ_k x[m][k]·q[k][n] and xs[m] = Σ_k x[m][k]; then
// y[m][n] += s[g][n]·(acc − z[g][n]·xs)  ==  Σ_k x·s·(q − z).
void GptqMatMul(ThreadPool& pool, const GptqLinear& w, const float* x_in, int M, float* y) {
  const int K = w.K, N = w.N;
  std::vector<float> gathered;
  const float* x = x_in;
  if (!w.perm.empty()) {
    gathered.resize(static_cast<size_t>(M) * K);
    for (int m = 0; m < M; ++m)
      for (int k = 0; k < K; ++k) gathered[m * K + k] = x_in[m * K + w.perm[k]];
    x = gathered.data();
  }
  const int blocks = (N + kColumnBlock - 1) / kColumnBlock;
  pool.ParallelFor(blocks, [&](int b0, int b1) {
    std::vector<float> acc(static_cast<size_t>(M) * kColumnBlock);
    std::vector<float> xs(M);
    for (int b = b0; b < b1; ++b) {
      const int n0 = b * kColumnBlock, nb = std::min(kColumnBlock, N - n0);
      for (int m = 0; m < M; ++m) std::fill_n(y + m * N + n0, nb, 0.0f);
      for (int g = 0; g < w.num_groups(); ++g) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        std::fill(xs.begin(), xs.end(), 0.0f);
        for (int k = w.group_start[g]; k < w.group_start[g + 1]; ++k) {
          const uint32_t* row = w.qweight.data() + static_cast<size_t>(k >> 3) * N + n0;
          const int shift = (k & 7) * 4;
          for (int m = 0; m < M; ++m) {
            const float xv = x[m * K + k];
            xs[m] += xv;
            float* a = acc.data() + m * kColumnBlock;
            for (int j = 0; j < nb; ++j) a[j] += xv * static_cast<float>((row[j] >> shift) & 15u);
          }
        }
        const float* s = w.scales.data() + static_cast<size_t>(g) * N + n0;
        const uint8_t* z = w.zeros.data() + static_cast<size_t>(g) * N + n0;
        for (int m = 0; m < M; ++m) {
          const float* a = acc.data() + m * kColumnBlock;
          float* out = y + m * N + n0;
          for (int j = 0; j < nb; ++j) out[j] += s[j] * (a[j] - static_cast<float>(z[j]) * xs[m]);
        }
      }
    }
  });
}

void DenseMatMul(ThreadPool& pool, const Linear& w, const float* x, int M, float* y) {
  const int K = w.K, N = w.N;
  pool.ParallelFor(N, [&](int n0, int n1) {
    for (int n = n0; n < n1; ++n) {
      const float* wn = w.dense.data() + static_cast<size_t>(n) * K;
      for (int m = 0; m < M; ++m) {
        const float* xm = x + static_cast<size_t>(m) * K;
        float sum = 0.0f;
        for (int k = 0; k < K; ++k) sum += xm[k] * wn[k];
        y[static_cast<size_t>(m) * N + n] = sum;
      }
    }
  });
}

}  // namespace

void MatMul(ThreadPool& pool, const Linear& w, const float* x, int M, float* y) {
  if (w.quantized) {
    GptqMatMul(pool, w.gptq, x, M, y);
  } else {
    DenseMatMul(pool, w, x, M, y);
  }
}

void RmsNorm(const float* x, const float* weight, int n, float eps, float* out) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

void Rope(float* v, int head_dim, int pos, float theta) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    // HF: inv_freq = 1 / theta^(2i/d) in fp32; angle = pos * inv_freq.
    const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / head_dim);
    const float angle = static_cast<float>(pos) * inv_freq;
    const float c = std::cos(angle), s = std::sin(angle);
    const float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

void Softmax(float* x, int n) {
  const float mx = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void SwiGlu(const float* gate, const float* up, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace llama::cpu
