// The backend interface: a loaded model on one device with a fixed number of KV-cache
// slots. It knows tensors, not clients: the scheduler owns slots and positions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/config.h"
#include "engine/weights.h"

namespace llama {

// Where the CUDA backend's prefill GEMMs get GPTQ weights: dequantized to fp16 per prefill
// (kPerCall), an fp16 copy kept from load (kResident: 2 bytes per weight more, +12.7 GB for
// Llama-2-7B; prefill +8-10%, time to first token -20% on an H200), or kAuto: resident when,
// with the copies, at least half of the device's memory stays free
// (KeepResidentPrefillWeights), else per call. The CPU backend ignores it.
enum class PrefillWeights { kAuto, kPerCall, kResident };
// "auto"; "true" / "1" / "resident"; "false" / "0" / "per_call". InvalidArgument otherwise.
absl::StatusOr<PrefillWeights> ParsePrefillWeights(absl::string_view text);
const char* PrefillWeightsName(PrefillWeights p);  // "auto", "per_call", "resident"
// kAuto's rule: keep copy_bytes of copies only if free_bytes - copy_bytes >= total_bytes / 2.
inline bool KeepResidentPrefillWeights(size_t free_bytes, size_t total_bytes, size_t copy_bytes) {
  return copy_bytes <= free_bytes && free_bytes - copy_bytes >= total_bytes / 2;
}

struct RunnerOptions {
  int max_slots = 8;         // concurrent sequences (KV cache slots)
  int max_context = 0;       // positions per slot; 0 = config.max_position_embeddings
  int threads = 0;           // CPU backend: worker threads (0 = hardware concurrency)
  int device = 0;            // CUDA backend: device index
  PrefillWeights prefill_weights = PrefillWeights::kAuto;  // CUDA backend (above)
};

// One row of a sampled decode step (ModelRunner::DecodeSampled): the rule of engine/sampler.h
// (temperature 0 = argmax) and the row's uniform number kernels::SampleUniform(seed, draw).
struct RowSampling {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  uint64_t draw = 0;  // t of this step's token among the sequence's sampled tokens
  bool operator==(const RowSampling& o) const {
    return temperature == o.temperature && top_k == o.top_k && top_p == o.top_p && seed == o.seed && draw == o.draw;
  }
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int max_slots() const = 0;
  virtual int max_context() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "cuda:0 (NVIDIA H200)"
  virtual size_t memory_bytes() const = 0;      // weights + KV cache held

  // Runs `tokens` of one sequence at positions start_pos .. start_pos+n-1, writing K/V
  // into `slot` (cache entries before start_pos are kept). logits receives vocab floats
  // for the last token, or n*vocab floats (row per token) when all_logits.
  // Positions beyond max_context -> InvalidArgument.
  virtual absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                               absl::Span<float> logits, bool all_logits = false) = 0;

  // One decode step for a batch of sequences: sequence i feeds tokens[i] at positions[i]
  // into slots[i]; logits receives [n, vocab].
  virtual absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                              absl::Span<const int32_t> tokens, absl::Span<float> logits) = 0;

  // One decode step for a batch of greedy sequences: as Decode, but out_ids[i] receives the
  // argmax of row i's logits (lowest id on ties) instead of the logits. With run_ahead the
  // runner may start the step that follows (same slots, positions + 1, tokens = out_ids)
  // before it returns, so that a next call with exactly those inputs only collects it; any
  // other call runs after it (the K/V it wrote at positions + 1 is rewritten before anyone
  // attends to it). The default goes through Decode; the CUDA backend picks the ids on the
  // device and reads back only them.
  virtual absl::Status DecodeArgmax(absl::Span<const int> slots, absl::Span<const int> positions,
                                    absl::Span<const int32_t> tokens, absl::Span<int32_t> out_ids,
                                    bool run_ahead = false) {
    (void)run_ahead;
    const size_t vocab = config().vocab_size;
    if (out_ids.size() < slots.size())
      return absl::InvalidArgumentError("DecodeArgmax: out_ids is shorter than the batch");
    std::vector<float> logits(slots.size() * vocab);
    absl::Status st = Decode(slots, positions, tokens, absl::MakeSpan(logits));
    if (!st.ok()) return st;
    for (size_t i = 0; i < slots.size(); ++i) {
      const auto row = logits.begin() + i * vocab;
      out_ids[i] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
    }
    return absl::OkStatus();
  }

  // One decode step for a batch of sampled sequences: as DecodeArgmax, but out_ids[i] receives
  // the token the sampling rule (engine/sampler.h: SampleToken) picks from row i's logits under
  // rows[i] with u = kernels::SampleUniform(rows[i].seed, rows[i].draw). With run_ahead the step
  // that follows (same slots, positions + 1, tokens = out_ids, draw + 1 for rows with temperature
  // > 0) may start before it returns; a next call with exactly those inputs only collects it.
  // The default goes through Decode and the host rule; the CUDA backend samples on the device.
  virtual absl::Status DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                                     absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                                     absl::Span<int32_t> out_ids, bool run_ahead = false);

  // Greedy decoding of one sequence: feeds `token` at `pos` into `slot`, then each chosen
  // token at the next position; out_tokens[i] receives the argmax after step i (lowest id
  // on ties), so out_tokens.size() steps run and positions pos .. pos+size-1 are written.
  // The default goes through Decode; the CUDA backend runs the loop on the device (graph
  // replays, no host round-trip per token).
  virtual absl::Status DecodeGreedy(int slot, int pos, int32_t token, absl::Span<int32_t> out_tokens) {
    std::vector<float> logits(config().vocab_size);
    for (int32_t& out : out_tokens) {
      const int s = slot, p = pos;
      absl::Status st = Decode(absl::MakeConstSpan(&s, 1), absl::MakeConstSpan(&p, 1),
                               absl::MakeConstSpan(&token, 1), absl::MakeSpan(logits));
      if (!st.ok()) return st;
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      out = token;
      ++pos;
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCpuRunner(
    std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options);

// Defined only when built with CUDA (LLAMA_HAVE_CUDA); otherwise returns Unavailable.
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(
    std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options);

enum class Backend { kCpu, kCuda };
absl::StatusOr<Backend> ParseBackend(const std::string& name);
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateRunner(
    Backend backend, std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options);

}  // namespace llama
