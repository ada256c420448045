// Synthetic GPTQ Llama checkpoints: random (seeded) weights in the exact file layout of
// TheBloke/Llama-2-7b-Chat-GPTQ's branches (AutoGPTQ v1 packing), plus the json files and
// a tokenizer.model. Used for the offline demo model, 7B-shape benchmarks and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llama {

struct CheckpointShape {
  int hidden = 0;
  int intermediate = 0;
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;
  int vocab = 0;
  int context = 0;
  bool tie_embeddings = false;
};

// Small demo model: hidden 128, intermediate 384, 4 layers, 8 heads / 4 kv heads,
// vocab 512, context 512, tied embeddings.
CheckpointShape TinyShape();
// Llama-2-7B: 4096 / 11008 / 32 layers / 32 heads / vocab 32000 / context 4096, untied.
CheckpointShape Llama2_7bShape();
absl::StatusOr<CheckpointShape> ShapeByPreset(const std::string& preset);

// One branch layout of the real repo.
struct CheckpointLayout {
  std::string branch;  // "main", "gptq-4bit-32g-actorder_True", ...
  int group_size = 128;
  bool desc_act = false;
};
// The four branch names, in a fixed order.
const std::vector<std::string>& AllLayoutNames();
absl::StatusOr<CheckpointLayout> LayoutByName(const std::string& name);

struct CheckpointOptions {
  CheckpointShape shape;
  CheckpointLayout layout;
  uint64_t seed = 0;
  int shards = 1;              // > 1: model-0000i-of-0000N.safetensors + index json
  std::string tokenizer_path;  // copy this tokenizer.model; empty: train a small BPE one
  int threads = 0;             // 0: hardware concurrency
};

// Writes a complete checkpoint dir (created if needed): model safetensors, config.json,
// quantize_config.json, generation_config.json, tokenizer_config.json,
// special_tokens_map.json, tokenizer.model. Same seed + shape + layout -> same tensors.
absl::Status WriteCheckpoint(const std::string& dir, const CheckpointOptions& options);

// Trains (vocab pieces, BPE, byte fallback, unk=0 bos=1 eos=2) on an embedded English text
// and writes `path`. Fails when the text cannot support that many pieces.
absl::Status TrainDemoTokenizer(const std::string& path, int vocab);

}  // namespace llama
