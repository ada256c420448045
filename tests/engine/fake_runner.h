// The Scheduler tests' fake ModelRunner (scheduler_test.cc, scheduler_errors_test.cc): a
// tiny deterministic model whose next token is a function of every token in the slot's
// cache up to the current position, call recording, a gate that blocks calls, a poisoned
// prompt token; and the test fixture that builds a Scheduler over it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "gtest/gtest.h"
#include "tests/engine/runner_gate.h"
#include "tests/engine/test_fixtures.h"

namespace llama::testing {

inline constexpr int kVocab = 512;  // stories260K tokenizer size: fake ids decode to real pieces

// The fake's "model": the next token is a function of every token in the slot's cache
// up to the current position, so wrong positions, slots or prefill chunks change the
// output. Never 0..2 (unk/bos/eos).
inline int NextToken(const std::vector<int>& context) {
  int64_t sum = 0;
  for (size_t i = 0; i < context.size(); ++i) sum += context[i] * static_cast<int64_t>(i + 1);
  return 3 + static_cast<int>(sum % 500);
}

inline std::vector<int> Reference(std::vector<int> prompt, int steps) {
  std::vector<int> out;
  for (int i = 0; i < steps; ++i) {
    int t = NextToken(prompt);
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

class FakeRunner : public ModelRunner {
 public:
  FakeRunner(int slots, int context) : slots_(slots), context_(context) {
    config_.vocab_size = kVocab;
    config_.max_position_embeddings = context;
    cache_.assign(slots, std::vector<int>(context, -1));
  }

  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return slots_; }
  int max_context() const override { return context_; }
  std::string device_name() const override { return "fake"; }
  size_t memory_bytes() const override { return 1234; }

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool all_logits) override {
    gate_.Pass();
    absl::MutexLock lock(&mu_);
    ++prefill_calls_;
    calls_ += 'P';
    max_prefill_len_ = std::max<int>(max_prefill_len_, tokens.size());
    if (all_logits) return absl::UnimplementedError("fake: all_logits");
    for (int32_t t : tokens) {
      if (t == poison_prefill_) return absl::InternalError("fake: poisoned prompt token");
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (absl::Status s = Put(slot, start_pos + static_cast<int>(i), tokens[i]); !s.ok()) {
        return s;
      }
    }
    return WriteLogits(slot, start_pos + static_cast<int>(tokens.size()) - 1, logits);
  }

  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    gate_.Pass();
    absl::MutexLock lock(&mu_);
    ++decode_calls_;
    calls_ += 'D';
    max_batch_ = std::max<int>(max_batch_, slots.size());
    if (slots.size() != positions.size() || slots.size() != tokens.size() ||
        logits.size() != slots.size() * kVocab) {
      return absl::InvalidArgumentError("fake: decode shapes disagree");
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (slots[i] == slots[j]) return absl::InvalidArgumentError("fake: slot twice in batch");
      }
      if (absl::Status s = Put(slots[i], positions[i], tokens[i]); !s.ok()) return s;
      if (absl::Status s = WriteLogits(slots[i], positions[i], logits.subspan(i * kVocab, kVocab));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // Greedy batches: recorded ('A' with run_ahead, 'a' without), then the default (Decode +
  // argmax), so `calls` still shows the 'D'.
  absl::Status DecodeArgmax(absl::Span<const int> slots, absl::Span<const int> positions,
                            absl::Span<const int32_t> tokens, absl::Span<int32_t> out_ids,
                            bool run_ahead) override {
    {
      absl::MutexLock lock(&mu_);
      argmax_calls_ += run_ahead ? 'A' : 'a';
    }
    return ModelRunner::DecodeArgmax(slots, positions, tokens, out_ids, run_ahead);
  }
  std::string argmax_calls() const {
    absl::MutexLock lock(&mu_);
    return argmax_calls_;
  }
  // Batches the runner samples: recorded ('S' with run_ahead, 's' without) with their largest
  // batch, then the default (Decode + the host rule).
  absl::Status DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                             absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                             absl::Span<int32_t> out_ids, bool run_ahead) override {
    {
      absl::MutexLock lock(&mu_);
      sampled_calls_ += run_ahead ? 'S' : 's';
      max_sampled_batch_ = std::max<int>(max_sampled_batch_, rows.size());
    }
    return ModelRunner::DecodeSampled(slots, positions, tokens, rows, out_ids, run_ahead);
  }
  std::string sampled_calls() const {
    absl::MutexLock lock(&mu_);
    return sampled_calls_;
  }
  int max_sampled_batch() const {
    absl::MutexLock lock(&mu_);
    return max_sampled_batch_;
  }

  // Gate: while closed, every Prefill/Decode call blocks until opened (see RunnerGate).
  void Close() { gate_.Close(); }
  void Open() { gate_.Open(); }
  void Allow(int n) { gate_.Allow(n); }
  void WaitUntilBlocked() { gate_.WaitUntilBlocked(); }

  void set_poison_prefill(int t) {
    absl::MutexLock lock(&mu_);
    poison_prefill_ = t;
  }
  int max_batch() const {
    absl::MutexLock lock(&mu_);
    return max_batch_;
  }
  int max_prefill_len() const {
    absl::MutexLock lock(&mu_);
    return max_prefill_len_;
  }
  std::string calls() const {  // 'P' prefill, 'D' decode, in order
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int decode_calls() const {
    absl::MutexLock lock(&mu_);
    return decode_calls_;
  }

 private:
  absl::Status Put(int slot, int pos, int token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (slot < 0 || slot >= slots_) return absl::InvalidArgumentError("fake: bad slot");
    if (pos < 0 || pos >= context_) {
      return absl::InvalidArgumentError(absl::StrCat("fake: position ", pos, " out of context"));
    }
    if (pos > 0 && cache_[slot][pos - 1] < 0) {
      return absl::FailedPreconditionError(absl::StrCat("fake: hole before position ", pos));
    }
    if (pos == 0) std::fill(cache_[slot].begin(), cache_[slot].end(), -1);  // new sequence
    cache_[slot][pos] = token;
    return absl::OkStatus();
  }

  absl::Status WriteLogits(int slot, int pos, absl::Span<float> logits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (logits.size() < static_cast<size_t>(kVocab)) {
      return absl::InvalidArgumentError("fake: logits too small");
    }
    std::vector<int> ctx(cache_[slot].begin(), cache_[slot].begin() + pos + 1);
    std::fill(logits.begin(), logits.begin() + kVocab, 0.0f);
    logits[NextToken(ctx)] = 10.0f;
    return absl::OkStatus();
  }

  ModelConfig config_;
  const int slots_, context_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<int>> cache_ ABSL_GUARDED_BY(mu_);
  int poison_prefill_ ABSL_GUARDED_BY(mu_) = -1;
  int prefill_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int decode_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int max_batch_ ABSL_GUARDED_BY(mu_) = 0;
  int max_prefill_len_ ABSL_GUARDED_BY(mu_) = 0;
  std::string calls_ ABSL_GUARDED_BY(mu_);
  std::string argmax_calls_ ABSL_GUARDED_BY(mu_);
  std::string sampled_calls_ ABSL_GUARDED_BY(mu_);
  int max_sampled_batch_ ABSL_GUARDED_BY(mu_) = 0;
  ::llama::testing::RunnerGate gate_;
};

class SchedulerFakeTest : public ::testing::Test {
 protected:
  void Make(int slots, int context, SchedulerOptions opts = {}) {
    ASSERT_NE(StoriesTokenizer(), nullptr);
    auto r = std::make_unique<FakeRunner>(slots, context);
    runner_ = r.get();
    sched_ = std::make_unique<Scheduler>(std::move(r), StoriesTokenizer(), std::move(opts));
  }
  FakeRunner* runner_ = nullptr;
  std::unique_ptr<Scheduler> sched_;
};

}  // namespace llama::testing
