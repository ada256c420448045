// llama_bench --temperature T [--top_k K] [--top_p P]: batch-1 sampled decode speed, through
// ModelRunner::DecodeSampled with run-ahead (the token picked by the runner, on a GPU on the
// device) and, for comparison, through Decode with the logits copied back and the host Sampler
// (what sampled requests cost before DecodeSampled).
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/tools/bench_util.h"

namespace llama::bench {

// Median tok/s of `repeat` runs (after one warm-up) of n sampled tokens after `prompt` in slot 0;
// on_device: DecodeSampled with run-ahead, else Decode + Sampler::Sample.
inline absl::StatusOr<double> SampledDecodeTokPerSec(ModelRunner& r, const std::vector<int32_t>& prompt, int n,
                                                     int repeat, const SamplingParams& params, bool on_device) {
  std::vector<float> logits(r.config().vocab_size);
  std::vector<double> t;
  for (int i = 0; i <= repeat; ++i) {  // i == 0 warms the graphs
    if (absl::Status st = r.Prefill(0, 0, prompt, absl::MakeSpan(logits)); !st.ok()) return st;
    Sampler sampler(params);
    int32_t tok = sampler.Sample(absl::MakeSpan(logits), {});
    const auto a = std::chrono::steady_clock::now();
    for (int s = 0; s < n; ++s) {
      const int slot = 0, pos = static_cast<int>(prompt.size()) + s;
      const auto slots = absl::MakeConstSpan(&slot, 1);
      const auto positions = absl::MakeConstSpan(&pos, 1);
      absl::Status st;
      if (on_device) {
        const RowSampling row{params.temperature, params.top_k, params.top_p, params.seed, sampler.draws()};
        st = r.DecodeSampled(slots, positions, absl::MakeConstSpan(&tok, 1), absl::MakeConstSpan(&row, 1),
                             absl::MakeSpan(&tok, 1), /*run_ahead=*/s + 1 < n);
        sampler.SkipDraw();
      } else {
        st = r.Decode(slots, positions, absl::MakeConstSpan(&tok, 1), absl::MakeSpan(logits));
        tok = sampler.Sample(absl::MakeSpan(logits), {});
      }
      if (!st.ok()) return st;
    }
    if (i > 0) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return n / Median(t);
}

// Both figures as (row label, tok/s): DecodeSampled with run-ahead, then Decode + host Sampler,
// for the sampling rule (temperature, top_k, top_p; seed 1) after `prompt`, n tokens.
inline absl::StatusOr<std::vector<std::pair<std::string, double>>> SampledDecodeRows(
    ModelRunner& r, const std::vector<int32_t>& prompt, int n, int repeat, float temperature, int top_k, float top_p) {
  SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = top_k;
  sp.top_p = top_p;
  sp.seed = 1;
  if (absl::Status st = ValidateSamplingParams(sp); !st.ok()) return st;
  const std::string what = absl::StrFormat("T %g top_k %d top_p %g, %d+%d", sp.temperature, sp.top_k, sp.top_p,
                                           static_cast<int>(prompt.size()), n);
  std::vector<std::pair<std::string, double>> rows;
  for (const bool on_device : {true, false}) {
    absl::StatusOr<double> tok_s = SampledDecodeTokPerSec(r, prompt, n, repeat, sp, on_device);
    if (!tok_s.ok()) return tok_s.status();
    rows.emplace_back(absl::StrFormat("decode tok/s, batch 1, %s (%s)",
                                      on_device ? "DecodeSampled run-ahead" : "Decode()+host sampler", what),
                      *tok_s);
  }
  return rows;
}

}  // namespace llama::bench
