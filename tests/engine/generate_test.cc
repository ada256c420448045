// Sequence / Generate with a scripted fake ModelRunner: EOS, length, stop strings across
// token boundaries, context limit, cancellation, UTF-8 holding, logprobs, errors.
#include "engine/generate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using ::llama::testing::Llama2;

// A runner whose logits make script[i] the argmax after the i-th model call (Prefill is
// call 0). Records every fed token and position.
class ScriptedRunner : public ModelRunner {
 public:
  ScriptedRunner(std::vector<int> script, int max_context, int vocab = 32000)
      : script_(std::move(script)), max_context_(max_context) {
    config_.vocab_size = vocab;
    config_.eos_token_id = 2;
    config_.max_position_embeddings = max_context;
  }
  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return 4; }
  int max_context() const override { return max_context_; }
  std::string device_name() const override { return "fake"; }
  size_t memory_bytes() const override { return 0; }

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool all_logits) override {
    if (fail_prefill) return absl::InternalError("scripted prefill failure");
    EXPECT_FALSE(all_logits);
    prefill_slot = slot;
    prefill_start = start_pos;
    prefill_tokens.assign(tokens.begin(), tokens.end());
    if (start_pos + static_cast<int>(tokens.size()) > max_context_) {
      return absl::InvalidArgumentError("beyond context");
    }
    Fill(logits);
    return absl::OkStatus();
  }

  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    EXPECT_EQ(slots.size(), 1u);
    EXPECT_EQ(slots[0], prefill_slot);
    if (positions[0] >= max_context_) return absl::InvalidArgumentError("beyond context");
    decode_positions.push_back(positions[0]);
    decode_tokens.push_back(tokens[0]);
    Fill(logits);
    return absl::OkStatus();
  }

  // Records each sampled step's row and run-ahead flag, then the default (Decode + host rule).
  absl::Status DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                             absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                             absl::Span<int32_t> out_ids, bool run_ahead) override {
    sampled_rows.insert(sampled_rows.end(), rows.begin(), rows.end());
    sampled_ahead.push_back(run_ahead);
    return ModelRunner::DecodeSampled(slots, positions, tokens, rows, out_ids, run_ahead);
  }

  std::vector<RowSampling> sampled_rows;
  std::vector<bool> sampled_ahead;
  bool fail_prefill = false;
  int prefill_slot = -1;
  int prefill_start = -1;
  std::vector<int> prefill_tokens;
  std::vector<int> decode_positions;
  std::vector<int> decode_tokens;
  int calls = 0;

 private:
  void Fill(absl::Span<float> logits) {
    EXPECT_EQ(logits.size(), static_cast<size_t>(config_.vocab_size));
    for (float& l : logits) l = 0.0f;
    const int want = calls < static_cast<int>(script_.size()) ? script_[calls] : 29889;  // "."
    logits[want] = 10.0f;
    ++calls;
  }
  std::vector<int> script_;
  int max_context_;
  ModelConfig config_;
};

std::vector<int> Concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Text the generated ids add to the prompt in a full decode.
std::string Continuation(const std::vector<int>& prompt, const std::vector<int>& gen) {
  const std::string full = Llama2().Decode(Concat(prompt, gen));
  return full.substr(Llama2().Decode(prompt).size());
}

struct GenRun {
  absl::StatusOr<GenerateResult> result;
  std::vector<StepOutput> steps;
  std::string streamed;
};

GenRun DoGenerate(ScriptedRunner& runner, const std::vector<int>& prompt, const SamplingParams& p,
               int cancel_after = -1, int slot = 0) {
  GenRun run;
  run.result = Generate(
      runner, Llama2(), prompt, p,
      [&](const StepOutput& s) {
        run.steps.push_back(s);
        run.streamed += s.text;
        return cancel_after < 0 || static_cast<int>(run.steps.size()) < cancel_after;
      },
      slot);
  return run;
}

TEST(FinishReasonTest, Names) {
  EXPECT_STREQ(FinishReasonName(FinishReason::kLength), "length");
  EXPECT_STREQ(FinishReasonName(FinishReason::kEos), "eos");
  EXPECT_STREQ(FinishReasonName(FinishReason::kStop), "stop");
  EXPECT_STREQ(FinishReasonName(FinishReason::kCancelled), "cancelled");
}

TEST(GenerateTest, StopsAtEosWithoutEmittingIt) {
  const std::vector<int> prompt = Llama2().Encode("[INST] Hi [/INST]", true);
  const std::vector<int> answer = Llama2().Encode("Hello world, how are you?");
  ScriptedRunner runner(Concat(answer, {2, 100, 100}), 256);
  GenRun run = DoGenerate(runner, prompt, SamplingParams{}, -1, 2);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->finish, FinishReason::kEos);
  EXPECT_EQ(run.result->tokens, Concat(answer, {2}));
  EXPECT_EQ(run.result->text, Continuation(prompt, answer));
  EXPECT_EQ(run.streamed, run.result->text);
  EXPECT_EQ(run.result->prompt_tokens, static_cast<int>(prompt.size()));
  ASSERT_FALSE(run.steps.empty());
  EXPECT_EQ(run.steps.back().finish, FinishReason::kEos);
  EXPECT_EQ(run.steps.back().text, "");
  // Prompt prefilled at 0 into the slot; each sampled token fed at the next position.
  EXPECT_EQ(runner.prefill_slot, 2);
  EXPECT_EQ(runner.prefill_start, 0);
  EXPECT_EQ(runner.prefill_tokens, prompt);
  EXPECT_EQ(runner.decode_tokens, answer);
  for (size_t i = 0; i < runner.decode_positions.size(); ++i) {
    EXPECT_EQ(runner.decode_positions[i], static_cast<int>(prompt.size() + i));
  }
}

TEST(GenerateTest, StopsAtMaxNewTokens) {
  const std::vector<int> prompt = {1, 15043};
  const std::vector<int> answer = Llama2().Encode("one two three four five six");
  ScriptedRunner runner(answer, 256);
  SamplingParams p;
  p.max_new_tokens = 3;
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->finish, FinishReason::kLength);
  const std::vector<int> first3(answer.begin(), answer.begin() + 3);
  EXPECT_EQ(run.result->tokens, first3);
  EXPECT_EQ(run.result->text, Continuation(prompt, first3));
  EXPECT_EQ(run.streamed, run.result->text);
  EXPECT_EQ(runner.decode_tokens.size(), 2u);  // the last token is never fed
}

TEST(GenerateTest, StopStringAcrossTokensIsCutAndNeverStreamed) {
  const std::vector<int> prompt = {1, 15043};
  const std::vector<int> answer = Llama2().Encode("The answer is 42.\n\nUser: and more text");
  ScriptedRunner runner(answer, 256);
  SamplingParams p;
  p.stop = {"\n\nUser:"};
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->finish, FinishReason::kStop);
  EXPECT_EQ(run.result->text, " The answer is 42.");
  EXPECT_EQ(run.streamed, run.result->text);
  for (const StepOutput& s : run.steps) EXPECT_EQ(s.text.find('\n'), std::string::npos);
  // It stopped on the token completing "User:" and not later.
  ASSERT_LT(run.result->tokens.size(), answer.size());
  const std::string through = Continuation(prompt, run.result->tokens);
  EXPECT_NE(through.find("\n\nUser:"), std::string::npos);
  std::vector<int> one_less(run.result->tokens.begin(), run.result->tokens.end() - 1);
  EXPECT_EQ(Continuation(prompt, one_less).find("\n\nUser:"), std::string::npos);
}

TEST(GenerateTest, EarliestOfSeveralStopStrings) {
  const std::vector<int> prompt = {1};
  const std::vector<int> answer = Llama2().Encode("alpha beta gamma delta");
  ScriptedRunner runner(answer, 256);
  SamplingParams p;
  p.stop = {"delta", "ta gam"};
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok());
  EXPECT_EQ(run.result->finish, FinishReason::kStop);
  EXPECT_EQ(run.result->text, "alpha be");
}

TEST(GenerateTest, HeldStopPrefixIsReleasedWhenItDoesNotMatch) {
  const std::vector<int> prompt = {1};
  const std::vector<int> answer = Llama2().Encode("a\n\nUse it well");
  ScriptedRunner runner(Concat(answer, {2}), 256);
  SamplingParams p;
  p.stop = {"\n\nUser:"};
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok());
  EXPECT_EQ(run.result->finish, FinishReason::kEos);
  EXPECT_EQ(run.result->text, Llama2().Decode(answer));
  EXPECT_EQ(run.streamed, run.result->text);
  // While "\n\nUse" could still become the stop string, nothing past "a" was emitted.
  std::string so_far;
  for (const StepOutput& s : run.steps) {
    so_far += s.text;
    if (so_far.size() > 1) {
      EXPECT_NE(so_far.find("Use it"), std::string::npos) << "released early: " << so_far;
      break;
    }
  }
}

TEST(GenerateTest, StopAtLengthFlushesHeldStopPrefix) {
  const std::vector<int> prompt = {1};
  const std::vector<int> answer = Llama2().Encode("done\n");
  ScriptedRunner runner(answer, 256);
  SamplingParams p;
  p.stop = {"\n\n"};
  p.max_new_tokens = static_cast<int>(answer.size());
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok());
  EXPECT_EQ(run.result->finish, FinishReason::kLength);
  EXPECT_EQ(run.result->text, "done\n");
  EXPECT_EQ(run.streamed, "done\n");
}

TEST(GenerateTest, ContextLimitEndsWithLength) {
  const std::vector<int> prompt = Llama2().Encode("Once upon a time", true);  // 5 tokens
  ASSERT_EQ(prompt.size(), 5u);
  ScriptedRunner runner(Llama2().Encode("there was a little girl named Lily"), 8);
  SamplingParams p;
  p.max_new_tokens = 100;
  GenRun run = DoGenerate(runner, prompt, p);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->finish, FinishReason::kLength);
  EXPECT_EQ(run.result->tokens.size(), 3u);  // prompt + generated == context
  for (int pos : runner.decode_positions) EXPECT_LT(pos, 8);
  EXPECT_EQ(run.result->text, Continuation(prompt, run.result->tokens));
}

TEST(GenerateTest, PromptFillingTheContextIsInvalid) {
  const std::vector<int> prompt(8, 100);
  ScriptedRunner runner({100}, 8);
  auto r = Generate(runner, Llama2(), prompt, SamplingParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("8"), std::string::npos) << r.status();
  const std::vector<int> longer(20, 100);
  auto r2 = Generate(runner, Llama2(), longer, SamplingParams{});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("20"), std::string::npos) << r2.status();
  EXPECT_NE(r2.status().message().find("8"), std::string::npos) << r2.status();
  EXPECT_EQ(runner.calls, 0);  // nothing ran
}

TEST(GenerateTest, InvalidParamsAndEmptyPromptRejected) {
  ScriptedRunner runner({100}, 64);
  SamplingParams bad;
  bad.top_p = 0.0f;
  EXPECT_EQ(Generate(runner, Llama2(), {1}, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(runner, Llama2(), {}, SamplingParams{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(runner, Llama2(), {1}, SamplingParams{}, {}, 9).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GenerateTest, RunnerErrorPropagates) {
  ScriptedRunner runner({100}, 64);
  runner.fail_prefill = true;
  auto r = Generate(runner, Llama2(), {1, 100}, SamplingParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("prefill"), std::string::npos) << r.status();
}

TEST(GenerateTest, CallbackFalseCancels) {
  const std::vector<int> answer = Llama2().Encode("one two three four five six");
  ScriptedRunner runner(answer, 256);
  GenRun run = DoGenerate(runner, {1}, SamplingParams{}, /*cancel_after=*/2);
  ASSERT_TRUE(run.result.ok());
  EXPECT_EQ(run.result->finish, FinishReason::kCancelled);
  EXPECT_EQ(run.result->tokens.size(), 2u);
  EXPECT_EQ(run.steps.size(), 2u);
  EXPECT_EQ(runner.decode_tokens.size(), 1u);  // no model call after the cancel
}

TEST(GenerateTest, MultiByteCharactersAreHeldUntilComplete) {
  // "🦙" is four byte-fallback pieces (vectors.json).
  const std::vector<int> answer = {15043, 29871, 243, 162, 169, 156, 3186, 2};
  ScriptedRunner runner(answer, 256);
  GenRun run = DoGenerate(runner, {1}, SamplingParams{});
  ASSERT_TRUE(run.result.ok());
  ASSERT_EQ(run.steps.size(), answer.size());
  EXPECT_EQ(run.steps[0].text, "Hello");
  EXPECT_EQ(run.steps[1].text, " ");
  EXPECT_EQ(run.steps[2].text, "");
  EXPECT_EQ(run.steps[3].text, "");
  EXPECT_EQ(run.steps[4].text, "");
  EXPECT_EQ(run.steps[5].text, "\xF0\x9F\xA6\x99");
  EXPECT_EQ(run.steps[6].text, " world");
  EXPECT_EQ(run.result->text, "Hello \xF0\x9F\xA6\x99 world");
}

TEST(GenerateTest, LengthInsideMultiByteCharacterFlushesReplacement) {
  const std::vector<int> answer = {15043, 243, 162};
  ScriptedRunner runner(answer, 256);
  SamplingParams p;
  p.max_new_tokens = 3;
  GenRun run = DoGenerate(runner, {1}, p);
  ASSERT_TRUE(run.result.ok());
  EXPECT_EQ(run.result->finish, FinishReason::kLength);
  EXPECT_EQ(run.result->text, Llama2().Decode(answer));  // incomplete bytes as U+FFFD
  EXPECT_EQ(run.streamed, run.result->text);
}

TEST(SequenceTest, LogprobsAndNoStepsAfterFinish) {
  SamplingParams p;
  p.logprobs = true;
  p.max_new_tokens = 2;
  Sequence seq(&Llama2(), {1, 15043}, p, {2});
  EXPECT_EQ(seq.prompt_len(), 2);
  std::vector<float> logits(32000, 0.0f);
  logits[3186] = 10.0f;
  StepOutput a = seq.Step(absl::MakeSpan(logits));
  EXPECT_EQ(a.token, 3186);
  EXPECT_EQ(a.text, " world");
  const double expect = 10.0 - std::log(std::exp(10.0) + 31999.0);
  EXPECT_NEAR(a.logprob, expect, 1e-4);
  EXPECT_FALSE(seq.finished());
  std::fill(logits.begin(), logits.end(), 0.0f);
  logits[29991] = 10.0f;  // "!"
  StepOutput b = seq.Step(absl::MakeSpan(logits));
  EXPECT_EQ(b.finish, FinishReason::kLength);
  EXPECT_TRUE(seq.finished());
  EXPECT_EQ(seq.generated(), 2);
  StepOutput c = seq.Step(absl::MakeSpan(logits));
  EXPECT_EQ(c.token, -1);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(seq.generated(), 2);
  EXPECT_EQ(seq.tokens(), (std::vector<int>{1, 15043, 3186, 29991}));
}

TEST(SequenceTest, SeededSamplingIsReproducible) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 77;
  p.max_new_tokens = 30;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sequence seq(&Llama2(), {1}, p, {2});
    std::vector<float> logits(32000);
    while (!seq.finished()) {
      for (int i = 0; i < 32000; ++i) logits[i] = (i % 97 == 0) ? 3.0f : 0.0f;
      logits[2] = -100.0f;  // never EOS
      seq.Step(absl::MakeSpan(logits));
    }
    return seq.tokens();
  };
  EXPECT_EQ(run(77), run(77));
  EXPECT_NE(run(77), run(78));
}

// A sampled sequence lets the runner pick its tokens (DecodeSampled, one step ahead but the
// last, draw t for its t-th sampled token: the prefill's token was draw 0) and gets the tokens
// the host path (logprobs on: Decode + Sampler) gets with the same seed.
TEST(GenerateTest, SampledSequenceGoesThroughDecodeSampled) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.95f;
  p.seed = 1234;
  p.max_new_tokens = 12;
  ScriptedRunner runner({}, 64), host({}, 64);  // every step: 29889 at 10, the rest at 0
  GenRun run = DoGenerate(runner, {1}, p);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  ASSERT_EQ(runner.sampled_rows.size(), 11u);
  for (size_t i = 0; i < runner.sampled_rows.size(); ++i) {
    const RowSampling& r = runner.sampled_rows[i];
    EXPECT_EQ(r.draw, i + 1);
    EXPECT_EQ(r.seed, 1234u);
    EXPECT_EQ(r.temperature, 1.0f);
    EXPECT_EQ(r.top_p, 0.95f);
    EXPECT_EQ(runner.sampled_ahead[i], i + 1 < 11) << i;
  }
  p.logprobs = true;
  GenRun ref = DoGenerate(host, {1}, p);
  ASSERT_TRUE(ref.result.ok()) << ref.result.status();
  EXPECT_TRUE(host.sampled_rows.empty());
  EXPECT_EQ(run.result->tokens, ref.result->tokens);
  EXPECT_NE(run.result->tokens, std::vector<int>(run.result->tokens.size(), 29889)) << "not only the argmax";
}

}  // namespace
}  // namespace llama
