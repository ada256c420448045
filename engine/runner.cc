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
