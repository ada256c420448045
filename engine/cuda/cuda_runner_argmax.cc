// CudaRunner::DecodeArgmax (ModelRunner::DecodeArgmax): batched greedy decode steps that pick
// each row's id on the device and read back only the ids, and that can run one step ahead
// of the caller. A step's graph ends with kernels::LaunchArgmaxAdvance, which leaves the
// next step's tokens and positions on the device, so the step after it can be enqueued
// before the host has seen its ids. The scheduler calls it for batches of greedy sequences.
// DecodeChosen is that step and its run-ahead for DecodeSampled too (cuda_runner_sample.cc),
// whose graphs end with kernels::LaunchSampleAdvance instead.
#include "engine/cuda/cuda_runner_internal.h"

namespace llama::cuda_internal {

absl::Status CudaRunner::StageStep(absl::Span<const int> slots, absl::Span<const int> positions,
                                   absl::Span<const int32_t> tokens, Batch* b) {
  const int n = static_cast<int>(slots.size());
  if (positions.size() != slots.size() || tokens.size() != slots.size())
    return absl::InvalidArgumentError("Decode: slots, positions and tokens differ in length");
  if (n > rows_cap_) return absl::InvalidArgumentError(absl::StrCat("Decode: batch of ", n, " exceeds ", rows_cap_));
  const size_t R = rows_cap_;
  int max_keys = 0;
  for (int i = 0; i < n; ++i) {
    if (slots[i] < 0 || slots[i] >= opts_.max_slots)
      return absl::InvalidArgumentError(absl::StrCat("Decode: slot ", slots[i], " outside [0, ", opts_.max_slots, ")"));
    if (positions[i] < 0 || positions[i] >= max_ctx_)
      return absl::InvalidArgumentError(
          absl::StrCat("Decode: position ", positions[i], " outside the context of ", max_ctx_));
    if (tokens[i] < 0 || tokens[i] >= vocab_)
      return absl::InvalidArgumentError(absl::StrCat("Decode: token id ", tokens[i], " outside vocab"));
    h_io_[i] = tokens[i];
    h_io_[R + i] = slots[i];
    h_io_[2 * R + i] = positions[i];
    max_keys = std::max(max_keys, positions[i] + 1);
  }
  ShapeStep(slots, max_keys, b);
  return absl::OkStatus();
}

void CudaRunner::ShapeStep(absl::Span<const int> slots, int max_keys, Batch* b) const {
  b->rows = static_cast<int>(slots.size());
  b->distinct = std::set<int>(slots.begin(), slots.end()).size() == slots.size();
  PickSplits(max_keys, b);
}

absl::Status CudaRunner::EnqueueChosenStep(const Batch& b, int parity, Tail tail) {
  RETURN_IF_ERROR(Run(b, tail, parity));
  if (!IdsByKernel(tail))
    RETURN_IF_ERROR(Check(cudaMemcpyAsync(h_ids_ + static_cast<size_t>(parity) * rows_cap_, d_tokens_,
                                          sizeof(int32_t) * b.rows, cudaMemcpyDeviceToHost, stream_),
                          "copy ids"));
  // The event completes after the step's kernels, whose writes to pinned host memory the
  // host then sees.
  return Check(cudaEventRecord(ahead_done_[parity], stream_), "record step");
}

absl::Status CudaRunner::DecodeArgmax(absl::Span<const int> slots, absl::Span<const int> positions,
                                      absl::Span<const int32_t> tokens, absl::Span<int32_t> out_ids,
                                      bool run_ahead) {
  std::lock_guard<std::mutex> lock(mu_);
  if (out_ids.size() < slots.size())
    return absl::InvalidArgumentError("DecodeArgmax: out_ids is shorter than the batch");
  return DecodeChosen(slots, positions, tokens, {}, out_ids, run_ahead);
}

absl::Status CudaRunner::DecodeChosen(absl::Span<const int> slots, absl::Span<const int> positions,
                                      absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                                      absl::Span<int32_t> out_ids, bool run_ahead) {
  const int n = static_cast<int>(slots.size());
  if (n == 0) return absl::OkStatus();
  const Tail tail = rows.empty() ? Tail::kArgmaxAdvance : Tail::kSampleAdvance;
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  // The step run ahead by the last call fits only the very inputs it was started with.
  const bool collect = ahead_pending_ && std::equal(slots.begin(), slots.end(), ahead_slots_.begin(),
                                                     ahead_slots_.end()) &&
                       std::equal(positions.begin(), positions.end(), ahead_positions_.begin(),
                                  ahead_positions_.end()) &&
                       std::equal(tokens.begin(), tokens.end(), ahead_tokens_.begin(), ahead_tokens_.end()) &&
                       std::equal(rows.begin(), rows.end(), ahead_rows_.begin(), ahead_rows_.end());
  ahead_pending_ = false;
  int parity = 0;
  if (collect) {
    parity = ahead_parity_;
  } else {
    Batch b;
    RETURN_IF_ERROR(StageStep(slots, positions, tokens, &b));
    RETURN_IF_ERROR(UploadIo(n));
    if (!rows.empty()) RETURN_IF_ERROR(UploadRows(rows));
    RETURN_IF_ERROR(EnqueueChosenStep(b, parity, tail));
  }
  // The next step goes in before this one is waited for: the GPU does not idle while the
  // caller handles these ids.
  bool ahead = run_ahead;
  int max_keys = 0;
  for (int p : positions) {
    ahead = ahead && p + 2 <= max_ctx_;
    max_keys = std::max(max_keys, p + 2);
  }
  if (ahead) {
    Batch next;
    ShapeStep(slots, max_keys, &next);
    RETURN_IF_ERROR(EnqueueChosenStep(next, 1 - parity, tail));
  }
  RETURN_IF_ERROR(Check(cudaEventSynchronize(ahead_done_[parity]), "decode argmax"));
  const int32_t* ids = h_ids_ + static_cast<size_t>(parity) * rows_cap_;
  std::copy(ids, ids + n, out_ids.begin());
  if (ahead) {
    ahead_pending_ = true;
    ahead_parity_ = 1 - parity;
    ahead_slots_.assign(slots.begin(), slots.end());
    ahead_positions_.assign(positions.begin(), positions.end());
    for (int& p : ahead_positions_) ++p;
    ahead_tokens_.assign(ids, ids + n);
    ahead_rows_.assign(rows.begin(), rows.end());  // the device advanced each sampled row's draw
    for (RowSampling& r : ahead_rows_) r.draw += r.temperature != 0.0f;
  }
  return absl::OkStatus();
}

}  // namespace llama::cuda_internal
