// Token selection: greedy, temperature, top-k, top-p, repetition penalty; seeded.
#pragma once

#include <cstdint>
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

// The sampling rule for temperature > 0, implemented here and on the device
// (kernels::LaunchSampleAdvance): weights w = exp((l - max) / T); the candidates are the top_k
// largest logits (0 = all; ties: lower id first); the kept set is the shortest prefix of the
// candidates in descending order (ties: lower id first) whose weight reaches top_p x the
// candidates' total; the token is the first kept id, in ascending id order, whose running
// weight exceeds u x the kept total (the last kept id when rounding leaves it unreached).
// Temperature 0 is the argmax (lowest id on ties).
struct SampleRule {
  float temperature = 1.0f;
  int top_k = 0;       // 0 (or >= vocab) = off
  float top_p = 1.0f;  // (0, 1]
};

// The kept set of the rule: ascending ids, their weights, and the weights' sum in id order.
struct KeptCandidates {
  std::vector<int> ids;
  std::vector<double> weights;
  double total = 0.0;
};

// Fills `kept` (its buffers reused) for non-empty logits under rule (temperature > 0).
void KeepCandidates(absl::Span<const float> logits, const SampleRule& rule, KeptCandidates* kept);
// The id the inverse CDF over `kept` (ascending ids) gives for u in [0, 1).
int DrawKept(const KeptCandidates& kept, double u);
// The whole rule: argmax at temperature 0, else KeepCandidates + DrawKept.
int SampleToken(absl::Span<const float> logits, const SampleRule& rule, double u);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks the next token from raw logits (modified in place by the penalty);
  // `history` = all ids in context so far (prompt + generated) for the penalty.
  // If logprob != nullptr, stores log-softmax(logits)[chosen] (before temperature).
  // At temperature > 0 it draws with kernels::SampleUniform(seed, draws()) and counts the draw.
  int Sample(absl::Span<float> logits, absl::Span<const int> history, float* logprob = nullptr);
  // Counts a draw made elsewhere (a token the runner sampled with SampleUniform(seed, draws())).
  void SkipDraw() { ++draws_; }
  uint64_t draws() const { return draws_; }

 private:
  SamplingParams p_;
  uint64_t draws_ = 0;      // sampled tokens so far: t of the next one
  KeptCandidates kept_;  // scratch of Sample
};

// Finds the earliest stop string in `text`; returns its byte offset or npos. Callers keep
// text that may still grow into a stop string held back (see HoldBackForStop).
size_t FindStop(const std::string& text, const std::vector<std::string>& stops);
// Number of trailing bytes of `text` that are a proper prefix of some stop string.
size_t HoldBackForStop(const std::string& text, const std::vector<std::string>& stops);

}  // namespace llama
