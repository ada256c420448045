// CudaRunner::DecodeSampled (ModelRunner::DecodeSampled): batched sampled decode steps that pick
// each row's token on the device (kernels::LaunchSampleAdvance: temperature, top-k, top-p, the
// argmax at temperature 0) and read back only the ids, with DecodeArgmax's run-ahead
// (CudaRunner::DecodeChosen, cuda_runner_argmax.cc). The rows' parameters travel with the
// step's inputs; the kernel advances each sampled row's draw on the device, so a step run ahead
// samples the sequence's next uniform number.
#include "engine/cuda/cuda_runner_internal.h"

namespace llama::cuda_internal {

absl::Status CudaRunner::UploadRows(absl::Span<const RowSampling> rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const RowSampling& r = rows[i];
    h_rows_[i] = kernels::SampleRow{r.temperature, r.top_k, r.top_p, 0, r.seed, r.draw};
  }
  return Check(cudaMemcpyAsync(d_rows_, h_rows_, sizeof(kernels::SampleRow) * rows.size(), cudaMemcpyHostToDevice,
                               stream_),
               "copy sampling rows");
}

absl::Status CudaRunner::DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                                       absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                                       absl::Span<int32_t> out_ids, bool run_ahead) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rows.size() != slots.size() || out_ids.size() < slots.size())
    return absl::InvalidArgumentError("DecodeSampled: rows or out_ids do not match the batch");
  for (const RowSampling& r : rows) {
    if (!(r.temperature >= 0.0f && r.temperature < INFINITY) || r.top_k < 0 || !(r.top_p > 0.0f && r.top_p <= 1.0f))
      return absl::InvalidArgumentError(absl::StrCat("DecodeSampled: temperature ", r.temperature, ", top_k ",
                                                     r.top_k, ", top_p ", r.top_p, " out of range"));
  }
  return DecodeChosen(slots, positions, tokens, rows, out_ids, run_ahead);
}

}  // namespace llama::cuda_internal
