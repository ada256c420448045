#include "engine/runner.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/sampler.h"
#include "kernels/sample_uniform.h"

namespace llama {

absl::Status ModelRunner::DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                                        absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                                        absl::Span<int32_t> out_ids, bool run_ahead) {
  (void)run_ahead;
  if (rows.size() != slots.size() || out_ids.size() < slots.size())
    return absl::InvalidArgumentError("DecodeSampled: rows or out_ids do not match the batch");
  const size_t vocab = config().vocab_size;
  std::vector<float> logits(slots.size() * vocab);
  if (absl::Status st = Decode(slots, positions, tokens, absl::MakeSpan(logits)); !st.ok()) return st;
  for (size_t i = 0; i < slots.size(); ++i) {
    const RowSampling& r = rows[i];
    out_ids[i] = SampleToken(absl::MakeConstSpan(logits.data() + i * vocab, vocab),
                             SampleRule{r.temperature, r.top_k, r.top_p}, kernels::SampleUniform(r.seed, r.draw));
  }
  return absl::OkStatus();
}

absl::StatusOr<Backend> ParseBackend(const std::string& name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "cpu") return Backend::kCpu;
  if (n == "cuda" || n == "gpu") return Backend::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown backend '", name, "' (expected 'cpu' or 'cuda')"));
}

absl::StatusOr<PrefillWeights> ParsePrefillWeights(absl::string_view text) {
  if (text == "auto") return PrefillWeights::kAuto;
  if (text == "true" || text == "1" || text == "resident") return PrefillWeights::kResident;
  if (text == "false" || text == "0" || text == "per_call") return PrefillWeights::kPerCall;
  return absl::InvalidArgumentError(
      absl::StrCat("prefill weights '", text, "': expected auto, true (resident) or false (per call)"));
}

const char* PrefillWeightsName(PrefillWeights p) {
  switch (p) {
    case PrefillWeights::kAuto:
      return "auto";
    case PrefillWeights::kPerCall:
      return "per_call";
    case PrefillWeights::kResident:
      return "resident";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateRunner(
    Backend backend, std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options) {
  if (backend == Backend::kCuda) return CreateCudaRunner(std::move(weights), options);
  return CreateCpuRunner(std::move(weights), options);
}

#ifndef LLAMA_HAVE_CUDA
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(
    std::shared_ptr<const ModelWeights>, const RunnerOptions&) {
  return absl::UnavailableError("this build has no CUDA backend (nvcc was not found at build time)");
}
#endif

}  // namespace llama
