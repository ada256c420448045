#include "engine/act_order_fold.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace llama {
namespace {

// new[r * N + j] = old[r * N + perm[j]] for every row r of a row-major [rows, N] array.
template <typename T>
void PermuteColumns(std::vector<T>& a, int N, const std::vector<int32_t>& perm) {
  const size_t rows = a.size() / N;
  std::vector<T> row(N);
  for (size_t r = 0; r < rows; ++r) {
    T* p = a.data() + r * N;
    for (int j = 0; j < N; ++j) row[j] = p[perm[j]];
    std::copy(row.begin(), row.end(), p);
  }
}

// Output column j of `w` becomes its old column perm[j].
void PermuteOutputs(Linear& w, const std::vector<int32_t>& perm) {
  if (!w.quantized) {  // dense [N, K]: output n is row n
    std::vector<float> d(w.dense.size());
    for (int j = 0; j < w.N; ++j)
      std::copy_n(w.dense.begin() + static_cast<ptrdiff_t>(perm[j]) * w.K, w.K,
                  d.begin() + static_cast<ptrdiff_t>(j) * w.K);
    w.dense.swap(d);
    return;
  }
  GptqLinear& g = w.gptq;
  PermuteColumns(g.qweight, g.N, perm);
  PermuteColumns(g.scales, g.N, perm);
  PermuteColumns(g.zeros, g.N, perm);
}

}  // namespace

bool FoldDownPermutation(Linear& gate, Linear& up, Linear& down) {
  if (!down.quantized || down.gptq.perm.empty()) return false;
  const int K = down.K;
  if (gate.N != K || up.N != K || static_cast<int>(down.gptq.perm.size()) != K) return false;
  if (gate.quantized && gate.gptq.N != K) return false;
  if (up.quantized && up.gptq.N != K) return false;
  std::vector<bool> seen(K, false);
  for (int32_t p : down.gptq.perm) {
    if (p < 0 || p >= K || seen[p]) return false;
    seen[p] = true;
  }
  const std::vector<int32_t> perm = std::move(down.gptq.perm);
  down.gptq.perm.clear();
  PermuteOutputs(gate, perm);
  PermuteOutputs(up, perm);
  return true;
}

}  // namespace llama
