// Model, quantization and generation settings read from a Hugging Face checkpoint dir.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace llama {

// quantize_config.json (or config.json's quantization_config).
struct QuantConfig {
  int bits = 4;
  int group_size = 128;      // -1 = one group per column (per-channel)
  bool desc_act = false;     // act-order: g_idx is a scattered map
  bool sym = true;
  bool static_groups = false;
  std::string checkpoint_format = "gptq";  // "gptq" (v1: stored zero = zero - 1) or "gptq_v2"
  std::string model_file_base_name = "model";
};

// config.json, Llama fields.
struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  int hidden_size = 0;           // dim
  int intermediate_size = 0;     // MLP hidden
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;   // GQA; defaults to num_attention_heads
  int head_dim = 0;              // defaults to hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  bool tie_word_embeddings = false;
  int bos_token_id = 1;
  int eos_token_id = 2;
  std::optional<QuantConfig> quant;  // absent: dense (fp32/fp16/bf16) checkpoint
};

// generation_config.json (all optional).
struct GenerationConfig {
  std::vector<int> eos_token_ids;  // empty: use ModelConfig::eos_token_id
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  bool do_sample = false;
  int max_length = 0;
};

// Reads config.json (+ quantize_config.json when present, which wins over
// config.json's quantization_config). Unsupported settings fail with a message
// naming the file and field.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& dir);
absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& dir);

}  // namespace llama
