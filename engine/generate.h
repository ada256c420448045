// Generation of one sequence: sampling, streaming text, stop conditions. The
// scheduler drives many `Sequence`s through one ModelRunner; `Generate` drives one.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace llama {

enum class FinishReason { kNone, kLength, kEos, kStop, kCancelled };
const char* FinishReasonName(FinishReason r);  // "length", "eos", "stop", "cancelled"

struct StepOutput {
  int token = -1;
  std::string text;       // newly final text (may be empty: held back for UTF-8 / stop)
  float logprob = 0.0f;   // when SamplingParams::logprobs
  FinishReason finish = FinishReason::kNone;
};

class Sequence {
 public:
  Sequence(const Tokenizer* tok, std::vector<int> prompt, SamplingParams params,
           std::vector<int> eos_ids);
  // Samples the next token from the logits of the last position and returns what to
  // emit. After a finishing step, finished() is true and no more steps are taken.
  StepOutput Step(absl::Span<float> logits);
  // Whether a runner may pick the next token (no repetition penalty, no logprobs): with
  // sampling() it picks what Step would (ModelRunner::DecodeSampled).
  bool runner_can_choose() const;
  // runner_can_choose() at temperature 0: the next token is the plain argmax of the logits
  // (ModelRunner::DecodeArgmax).
  bool greedy() const;
  // The next token's rule and uniform number, for ModelRunner::DecodeSampled.
  RowSampling sampling() const;
  // Step with the token already picked as Step would (runner_can_choose() sequences only);
  // counts the sampler's draw at temperature > 0.
  StepOutput StepChosen(int token);
  bool finished() const { return finish_ != FinishReason::kNone; }
  FinishReason finish_reason() const { return finish_; }
  const std::vector<int>& tokens() const { return tokens_; }  // prompt + generated
  int prompt_len() const { return prompt_len_; }
  int generated() const { return static_cast<int>(tokens_.size()) - prompt_len_; }
  const SamplingParams& params() const { return params_; }

 private:
  const Tokenizer* tok_;
  std::vector<int> tokens_;
  int prompt_len_;
  SamplingParams params_;
  std::vector<int> eos_ids_;
  Sampler sampler_;
  StreamDecoder decoder_;
  std::string pending_;  // decoded text not yet emitted (may be a stop-string prefix)
  FinishReason finish_ = FinishReason::kNone;

  StepOutput Advance(int token, float logprob);
};

struct GenerateResult {
  std::vector<int> tokens;  // generated ids only
  std::string text;
  FinishReason finish = FinishReason::kNone;
  int prompt_tokens = 0;
};

// Runs prompt + decode on `slot` of the runner. on_step (optional) sees every step;
// returning false cancels. Prompt longer than the context -> InvalidArgument.
absl::StatusOr<GenerateResult> Generate(ModelRunner& runner, const Tokenizer& tok,
                                        const std::vector<int>& prompt,
                                        const SamplingParams& params,
                                        const std::function<bool(const StepOutput&)>& on_step = {},
                                        int slot = 0);

}  // namespace llama
