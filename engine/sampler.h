// Token selection: greedy, temperature, top-k, top-p, repetition penalty; seeded.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace llama {

struct SamplingParams {
  int max_new_tokens = 128;
  float temperature = 0.0f;        // 0 = greedy
  float top_p = 1.0f;              // (0, 1]
  int top_k = 0;                   // 0 = off
  float repetition_penalty = 1.0f; // HF: positive logits divided, negative multiplied
  uint64_t seed = 0;               // same seed -> same tokens
  std::vector<std::string> stop;   // matched on decoded text, across token boundaries
  bool logprobs = false;           // report log-softmax of the chosen token
};

// InvalidArgument for out-of-range values (negative temperature, top_p outside (0,1], ...).
absl::Status ValidateSamplingParams(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks the next token from raw logits (modified in place by the penalty);
  // `history` = all ids in context so far (prompt + generated) for the penalty.
  // If logprob != nullptr, stores log-softmax(logits)[chosen] (before temperature).
  int Sample(absl::Span<float> logits, absl::Span<const int> history, float* logprob = nullptr);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<double> weights_;  // scratch of Sample, [vocab]
  std::vector<int> candidates_;  // scratch of Sample
};

// Finds the earliest stop string in `text`; returns its byte offset or npos. Callers keep
// text that may still grow into a stop string held back (see HoldBackForStop).
size_t FindStop(const std::string& text, const std::vector<std::string>& stops);
// Number of trailing bytes of `text` that are a proper prefix of some stop string.
size_t HoldBackForStop(const std::string& text, const std::vector<std::string>& stops);

}  // namespace llama
