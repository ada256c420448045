// llama_bench --temperature T [--top_k K] [--top_p P]: batch-1 sampled decode speed, through
// ModelRunner::DecodeSampled with run-ahead (the token picked by the runner, on a GPU on the
// device) and, for comparison, through Decode with the logits copied back and the host Sampler
// (what sampled requests cost before DecodeSampled).
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/status/statusor.h"
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

}  // namespace llama::bench
