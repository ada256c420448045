// llama_bench --attn_clock: the report of the decode-attention kernel's clocked variant
// (kernels::SetAttentionClock; the cluster kernel's or the split kernel's, whichever was
// launched last, kernels::AttentionClockKernel) after its last launch: per point of split 0's path, the
// median over heads of the cycles since the previous point, rank 0's merge in detail, the
// wait-to-end time by %globaltimer; then every split's entry, end and arrival at the merge in
// µs from the head's first release, and which split was last to the merge.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/tools/bench_util.h"
#include "kernels/attention.h"

namespace llama::bench {

// The report's lines ("" when the clock holds no launch).
inline std::string AttentionClockReport() {
  std::string text;
  const std::vector<uint64_t> t = kernels::ReadAttentionClock();
  const int slots = kernels::kAttnClockSlots, per_head = kernels::kRopeAttnMaxSplits * slots;
  static const char* kCluster[] = {"entry",  "pre-wait", "wait",    "zero",  "q rope", "kv in smem",
                                   "scores", "softmax",  "p.v",     "merge start", "merged"};
  static const char* kSplit[] = {"entry", "pre-wait", "wait",      "zero",        "q rope", "new key",
                                 "tiles", "row merge", "partial", "merge start", "merged"};
  const bool split_kernel = kernels::AttentionClockKernel() == 2;
  const char* const* kPoint = split_kernel ? kSplit : kCluster;
  std::vector<std::vector<double>> d(11), entry(kernels::kRopeAttnMaxSplits), end(kernels::kRopeAttnMaxSplits),
      merge(kernels::kRopeAttnMaxSplits), qrope(kernels::kRopeAttnMaxSplits);
  std::vector<double> span, last_span;
  std::vector<int> last_to_merge(kernels::kRopeAttnMaxSplits, 0);
  int heads = 0, last_new_key = 0, splits = 0;
  // A block reaches the merge at its release (%globaltimer) plus its cycles from the wait to
  // the merge (clock64) at the SM clock's rate (cudaDevAttrClockRate, kHz).
  int khz = 0;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0) != cudaSuccess || khz <= 0) khz = 1980000;
  const double cycles_per_us = khz * 1e-3;
  for (size_t h = 0; (h + 1) * per_head <= t.size(); ++h) {
    const uint64_t* c = t.data() + h * per_head;  // split 0
    if (c[0] == 0) continue;
    ++heads;
    for (int i = 1; i <= 10; ++i) d[i].push_back(static_cast<double>(c[i] - c[i - 1]));
    span.push_back((static_cast<double>(c[12]) - static_cast<double>(c[11])) * 1e-3);
    // Every split of the launch, in us from the head's first release (%globaltimer).
    splits = static_cast<int>(std::min<uint64_t>(c[14], kernels::kRopeAttnMaxSplits));
    uint64_t first_release = UINT64_MAX, last_end = 0;
    int last = 0, last_merge = 0;
    for (int r = 0; r < splits; ++r) first_release = std::min(first_release, t[h * per_head + r * slots + 11]);
    auto us_after_release = [&](uint64_t ns) {
      return (static_cast<double>(ns) - static_cast<double>(first_release)) * 1e-3;
    };
    for (int r = 0; r < splits; ++r) {
      const uint64_t* b = t.data() + h * per_head + r * slots;
      entry[r].push_back(us_after_release(b[13]));
      end[r].push_back(us_after_release(b[12]));
      merge[r].push_back(us_after_release(b[11]) + static_cast<double>(b[9] - b[2]) / cycles_per_us);
      if (b[4] > b[3] && b[4] - b[3] < 1000000)  // an empty split (past the keys) leaves older values
        qrope[r].push_back(static_cast<double>(b[4] - b[3]));
      if (b[12] > last_end) last_end = b[12], last = r;
      if (merge[r].back() > merge[last_merge].back()) last_merge = r;
    }
    ++last_to_merge[last_merge];
    last_span.push_back(us_after_release(last_end));
    last_new_key += t[h * per_head + last * slots + 15] != 0;
  }
  if (span.empty()) return text;
  text = split_kernel ? "  attention clock, split kernel, split 0 (cycles, median over heads):"
                      : "  attention clock, cluster kernel, split 0 (cycles, median over heads):";
  for (int i = 1; i <= 10; ++i) text += absl::StrFormat(" %s %.0f", kPoint[i], Median(d[i]));
  // Rank 0's merge: its barrier complete after the merge start, then weights, denominator, output.
  std::vector<std::vector<double>> mg(4);
  for (size_t h = 0; (h + 1) * per_head <= t.size(); ++h)
    if (const uint64_t* c = &t[h * per_head]; c[0] != 0 && c[9] < c[16] && c[16] <= c[17] && c[19] <= c[10])
      for (int i = 0; i < 4; ++i) mg[i].push_back(static_cast<double>(c[16 + i] - c[i == 0 ? 9 : 15 + i]));
  if (!mg[0].empty())
    text += absl::StrFormat(" (barrier complete %.0f, weights %.0f, denominator %.0f, output %.0f)",
                            Median(mg[0]), Median(mg[1]), Median(mg[2]), Median(mg[3]));
  text += absl::StrFormat("; wait to end %.2f us\n", Median(span));
  text += absl::StrFormat("  attention blocks, us from the head's first release (median over %d heads), split: "
                          "entry / end:", heads);
  for (int r = 0; r < splits; ++r) text += absl::StrFormat(" %d: %.2f / %.2f", r, Median(entry[r]), Median(end[r]));
  text += absl::StrFormat("; last block ends %.2f us after the release, the new key's split in %d of %d heads\n",
                          Median(last_span), last_new_key, heads);
  text += "  attention blocks reach the merge, us from the head's first release (q rope cycles), split:";
  for (int r = 0; r < splits; ++r)
    text += absl::StrFormat(" %d: %.2f (%.0f)", r, Median(merge[r]), qrope[r].empty() ? 0.0 : Median(qrope[r]));
  text += "; last to the merge (heads):";
  for (int r = 0; r < splits; ++r)
    if (last_to_merge[r] > 0) text += absl::StrFormat(" split %d: %d", r, last_to_merge[r]);
  text += "\n";
  return text;
}

}  // namespace llama::bench
