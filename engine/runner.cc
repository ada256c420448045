#include "engine/runner.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace llama {

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
