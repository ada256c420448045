#include "engine/generate.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace llama {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "";
}

Sequence::Sequence(const Tokenizer* tok, std::vector<int> prompt, SamplingParams params,
                   std::vector<int> eos_ids)
    : tok_(tok),
      tokens_(std::move(prompt)),
      prompt_len_(static_cast<int>(tokens_.size())),
      params_(std::move(params)),
      eos_ids_(std::move(eos_ids)),
      sampler_(params_),
      decoder_(tok, tokens_) {}

StepOutput Sequence::Step(absl::Span<float> logits) {
  StepOutput out;
  if (finished()) {
    out.finish = finish_;
    return out;
  }
  float lp = 0.0f;
  const int token = sampler_.Sample(logits, tokens_, params_.logprobs ? &lp : nullptr);
  return Advance(token, lp);
}

bool Sequence::runner_can_choose() const { return params_.repetition_penalty == 1.0f && !params_.logprobs; }

bool Sequence::greedy() const { return params_.temperature == 0.0f && runner_can_choose(); }

RowSampling Sequence::sampling() const {
  return RowSampling{params_.temperature, params_.top_k, params_.top_p, params_.seed, sampler_.draws()};
}

StepOutput Sequence::StepChosen(int token) {
  if (finished()) {
    StepOutput out;
    out.finish = finish_;
    return out;
  }
  if (params_.temperature > 0.0f) sampler_.SkipDraw();
  return Advance(token, 0.0f);
}

StepOutput Sequence::Advance(int token, float logprob) {
  StepOutput out;
  out.token = token;
  out.logprob = logprob;
  tokens_.push_back(out.token);

  const bool eos = std::find(eos_ids_.begin(), eos_ids_.end(), out.token) != eos_ids_.end();
  const bool at_length = generated() >= params_.max_new_tokens;
  if (!eos) pending_ += decoder_.Push(out.token);  // EOS is never text
  if (eos || at_length) pending_ += decoder_.Flush();  // the end: nothing more can complete

  const size_t stop_at = FindStop(pending_, params_.stop);
  if (stop_at != std::string::npos) {
    out.text = pending_.substr(0, stop_at);
    pending_.clear();
    finish_ = FinishReason::kStop;
  } else if (eos || at_length) {
    out.text = std::move(pending_);
    pending_.clear();
    finish_ = eos ? FinishReason::kEos : FinishReason::kLength;
  } else {
    // Emit all but a tail that may still grow into a stop string. A stop string starts
    // on a character boundary, so the held tail does too.
    const size_t hold = HoldBackForStop(pending_, params_.stop);
    out.text = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  }
  out.finish = finish_;
  return out;
}

namespace {

absl::Status Annotate(const absl::Status& st, absl::string_view where) {
  return absl::Status(st.code(), absl::StrCat("generate: ", where, ": ", st.message()));
}

}  // namespace

absl::StatusOr<GenerateResult> Generate(ModelRunner& runner, const Tokenizer& tok,
                                        const std::vector<int>& prompt,
                                        const SamplingParams& params,
                                        const std::function<bool(const StepOutput&)>& on_step,
                                        int slot) {
  if (absl::Status st = ValidateSamplingParams(params); !st.ok()) return st;
  const int max_context = runner.max_context();
  const int prompt_len = static_cast<int>(prompt.size());
  if (prompt.empty()) return absl::InvalidArgumentError("generate: the prompt is empty");
  if (prompt_len >= max_context) {
    return absl::InvalidArgumentError(absl::StrCat("generate: the prompt has ", prompt_len,
                                                   " tokens; the context holds ", max_context,
                                                   " and at least one must be left to generate"));
  }
  if (slot < 0 || slot >= runner.max_slots()) {
    return absl::InvalidArgumentError(absl::StrCat("generate: slot ", slot, " is outside [0, ",
                                                   runner.max_slots(), ")"));
  }
  const int vocab = runner.config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat("generate: prompt token ", i, " = ",
                                                     prompt[i], " is outside the vocabulary [0, ",
                                                     vocab, ")"));
    }
  }

  // Prompt + generated tokens never exceed the context: stop with "length" there.
  SamplingParams effective = params;
  effective.max_new_tokens = std::min(params.max_new_tokens, max_context - prompt_len);
  std::vector<int> eos_ids = {tok.eos_id()};
  if (runner.config().eos_token_id != tok.eos_id()) eos_ids.push_back(runner.config().eos_token_id);

  std::vector<float> logits(vocab);
  const std::vector<int32_t> prompt32(prompt.begin(), prompt.end());
  if (absl::Status st = runner.Prefill(slot, 0, prompt32, absl::MakeSpan(logits)); !st.ok()) {
    return Annotate(st, "prefill");
  }

  Sequence seq(&tok, prompt, effective, std::move(eos_ids));
  GenerateResult result;
  result.prompt_tokens = prompt_len;
  // The first token comes from the prefill's logits; after it the runner picks each token
  // unless the host must (repetition penalty, logprobs): DecodeArgmax for a greedy sequence,
  // DecodeSampled for a sampled one (on a GPU, one step ahead).
  int32_t chosen = -1;
  while (true) {
    StepOutput out = chosen >= 0 ? seq.StepChosen(chosen) : seq.Step(absl::MakeSpan(logits));
    result.tokens.push_back(out.token);
    result.text += out.text;
    if (on_step && !on_step(out) && !seq.finished()) {
      result.finish = FinishReason::kCancelled;
      return result;
    }
    if (seq.finished()) break;
    const int pos = static_cast<int>(seq.tokens().size()) - 1;
    const int32_t token = out.token;
    const auto slots = absl::MakeConstSpan(&slot, 1);
    const auto positions = absl::MakeConstSpan(&pos, 1);
    const auto tokens = absl::MakeConstSpan(&token, 1);
    const bool ahead = seq.generated() + 1 < effective.max_new_tokens;
    const RowSampling row = seq.sampling();
    absl::Status st;
    if (seq.greedy()) {
      st = runner.DecodeArgmax(slots, positions, tokens, absl::MakeSpan(&chosen, 1), ahead);
    } else if (seq.runner_can_choose()) {
      st = runner.DecodeSampled(slots, positions, tokens, absl::MakeConstSpan(&row, 1), absl::MakeSpan(&chosen, 1),
                                ahead);
    } else {
      st = runner.Decode(slots, positions, tokens, absl::MakeSpan(logits));
    }
    if (!st.ok()) {
      return Annotate(st, absl::StrCat("decode at position ", pos));
    }
  }
  result.finish = seq.finish_reason();
  return result;
}

}  // namespace llama
