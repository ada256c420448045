// In-memory model weights, as loaded from a checkpoint dir (dense or GPTQ).
// This is the one representation every backend starts from: the CPU backend
// runs on it directly; the CUDA backend repacks it at upload.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config.h"

namespace llama {

// A GPTQ 4-bit linear layer y = x W, W of shape [K (in), N (out)], in canonical form:
// act-order rows already permuted so that each group's rows are contiguous.
//   x_perm[k] = x[perm[k]]                      (perm empty: identity)
//   w[k, n]   = scales[g, n] * (q[k, n] - zeros[g, n]),  g = group of permuted row k,
//               i.e. group_start[g] <= k < group_start[g + 1]
//   q[k, n]   = (qweight[(k / 8) * N + n] >> (4 * (k % 8))) & 15   (AutoGPTQ packing)
// zeros hold the real zero point (AutoGPTQ v1 stored value + 1).
struct GptqLinear {
  int K = 0, N = 0;
  int group_size = 0;                 // as configured (partial last group allowed)
  std::vector<int32_t> perm;          // [K] or empty
  std::vector<uint32_t> qweight;      // [K/8, N]
  std::vector<float> scales;          // [num_groups, N] (values exactly as stored fp16)
  std::vector<uint8_t> zeros;         // [num_groups, N], 0..16
  std::vector<int32_t> group_start;   // [num_groups + 1]
  int num_groups() const { return static_cast<int>(group_start.size()) - 1; }
  // Dequantized weight at original (unpermuted) input row `k_orig`, column n. For tests.
  float At(int k_orig, int n) const;
};

// A projection: quantized (gptq) or dense fp32 (dense is [N, K] row-major, HF's [out, in]).
struct Linear {
  int K = 0, N = 0;
  bool quantized = false;
  GptqLinear gptq;
  std::vector<float> dense;
};

struct LayerWeights {
  std::vector<float> attn_norm;  // [dim]
  std::vector<float> ffn_norm;   // [dim]
  Linear wq, wk, wv, wo;         // q: dim -> H*hd, k/v: dim -> KVH*hd, o: H*hd -> dim
  Linear w_gate, w_up, w_down;   // gate/up: dim -> hidden, down: hidden -> dim
};

struct ModelWeights {
  ModelConfig config;
  std::vector<float> embed;       // [vocab, dim]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // [dim]
  std::vector<float> lm_head;     // [vocab, dim]; empty when tied to embed
  const std::vector<float>& output_weight() const { return lm_head.empty() ? embed : lm_head; }
  size_t ByteSize() const;        // host memory held
};

// Loads config + tensors (model.safetensors, or sharded via model.safetensors.index.json,
// or `<model_file_base_name>.safetensors`). Validates every shape against the config;
// errors name the file and the tensor.
absl::StatusOr<std::shared_ptr<const ModelWeights>> LoadModelWeights(const std::string& dir);

}  // namespace llama
