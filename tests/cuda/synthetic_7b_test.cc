// Llama-2-7B-shaped synthetic checkpoints (made by make_checkpoint on the device machine):
//   $LLAMA_SYNTHETIC_7B_DIR  one checkpoint: CUDA vs CPU logits, 16-token prompt + 8 decode
//                            steps, each within 2e-2 relative (||cuda - cpu|| / ||cpu||); the
//                            CUDA options with kernels of their own (persistent decode, the
//                            cluster attention kernel) too.
//   $LLAMA_SYNTHETIC_7B_DIRS colon-separated checkpoints: all loaded at once on one GPU,
//                            memory per variant reported.
// Skipped when the variable is unset (CI) or there is no device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_split.h"
#include "engine/cuda/cuda_runner.h"
#include "engine/runner.h"
#include "engine/weights.h"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {
namespace {

double Rel(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST(Synthetic7bTest, CudaMatchesCpuOnPromptAndDecodeSteps) {
  SKIP_WITHOUT_CUDA();
  const char* dir = std::getenv("LLAMA_SYNTHETIC_7B_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "set LLAMA_SYNTHETIC_7B_DIR to a synthetic 7B checkpoint";
  auto w = LoadModelWeights(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const int vocab = (*w)->config.vocab_size;
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.max_context = 256;
  auto cuda = CreateCudaRunner(*w, opt);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  auto cpu = CreateCpuRunner(*w, opt);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  CudaOptions on;  // the opt-in persistent decode kernel follows the CPU too
  on.persistent_decode = true;
  auto persistent = CreateCudaRunnerWithOptions(*w, opt, on);
  ASSERT_TRUE(persistent.ok()) << persistent.status();
  EXPECT_TRUE(CudaPersistentDecodeActive(**persistent));
  CudaOptions cp;  // the cluster attention kernel (K/V in shared memory) below 1024 keys, not the split kernel
  cp.rope_split_attention = 1;
  auto cluster = CreateCudaRunnerWithOptions(*w, opt, cp);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::printf("[ 7b ] %s on %s, %.2f GB on the device\n", dir, (*cuda)->device_name().c_str(),
              (*cuda)->memory_bytes() / 1e9);

  std::uniform_int_distribution<int> td(3, vocab - 1);
  std::vector<int32_t> prompt(16);
  prompt[0] = 1;
  for (size_t i = 1; i < prompt.size(); ++i) prompt[i] = td(Rng());
  std::vector<float> a(prompt.size() * vocab), b(prompt.size() * vocab);
  ASSERT_TRUE((*cuda)->Prefill(0, 0, prompt, absl::MakeSpan(a), true).ok());
  ASSERT_TRUE((*cpu)->Prefill(0, 0, prompt, absl::MakeSpan(b), true).ok());
  std::vector<float> pa(a.size());
  ASSERT_TRUE((*persistent)->Prefill(0, 0, prompt, absl::MakeSpan(pa), true).ok());
  ASSERT_TRUE((*cluster)->Prefill(0, 0, prompt, absl::MakeSpan(pa), true).ok());
  const double prefill_rel = Rel(a, b);
  std::printf("[ 7b ] prefill (16 tokens, all rows): rel %.5f\n", prefill_rel);
  EXPECT_LT(prefill_rel, 2e-2);
  std::vector<float> la(a.end() - vocab, a.end()), lb(b.end() - vocab, b.end());
  int agree = 0;
  for (int step = 0; step < 8; ++step) {
    // Both backends are fed the CPU's greedy token so they stay on one sequence.
    const int32_t tok = static_cast<int32_t>(std::max_element(lb.begin(), lb.end()) - lb.begin());
    agree += tok == static_cast<int32_t>(std::max_element(la.begin(), la.end()) - la.begin());
    const int slot = 0, pos = 16 + step;
    ASSERT_TRUE((*cuda)->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                absl::MakeConstSpan(&tok, 1), absl::MakeSpan(la)).ok());
    ASSERT_TRUE((*cpu)->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                               absl::MakeConstSpan(&tok, 1), absl::MakeSpan(lb)).ok());
    const double rel = Rel(la, lb);
    std::printf("[ 7b ] decode step %d (pos %d): rel %.5f\n", step, pos, rel);
    EXPECT_LT(rel, 2e-2) << "decode step " << step;
    std::vector<float> lp(la.size());
    ASSERT_TRUE((*persistent)->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                      absl::MakeConstSpan(&tok, 1), absl::MakeSpan(lp)).ok());
    const double prel = Rel(lp, lb);
    std::printf("[ 7b ] persistent kernel, decode step %d: ||diff|| / ||cpu|| %.5f\n", step, prel);
    EXPECT_LT(prel, 2e-2) << "persistent decode step " << step;
    ASSERT_TRUE((*cluster)->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                   absl::MakeConstSpan(&tok, 1), absl::MakeSpan(lp)).ok());
    const double crel = Rel(lp, lb);
    std::printf("[ 7b ] cluster attention kernel, decode step %d: ||diff|| / ||cpu|| %.5f\n", step, crel);
    EXPECT_LT(crel, 2e-2) << "cluster attention decode step " << step;
  }
  std::printf("[ 7b ] greedy choice agreed on %d of 8 steps\n", agree);
}

TEST(Synthetic7bTest, AllVariantsLoadedAtOnceOnOneGpu) {
  SKIP_WITHOUT_CUDA();
  const char* dirs = std::getenv("LLAMA_SYNTHETIC_7B_DIRS");
  if (!dirs || !*dirs) GTEST_SKIP() << "set LLAMA_SYNTHETIC_7B_DIRS to colon-separated 7B checkpoints";
  std::vector<std::unique_ptr<ModelRunner>> runners;
  size_t free0 = 0, total = 0;
  cudaSetDevice(0);
  cudaFree(nullptr);
  ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
  for (const std::string& dir : std::vector<std::string>(absl::StrSplit(dirs, ':', absl::SkipEmpty()))) {
    auto w = LoadModelWeights(dir);
    ASSERT_TRUE(w.ok()) << w.status();
    RunnerOptions opt;
    opt.max_slots = 1;
    opt.max_context = 2048;
    auto r = CreateCudaRunner(*w, opt);
    ASSERT_TRUE(r.ok()) << dir << ": " << r.status();
    size_t free_now = 0;
    cudaMemGetInfo(&free_now, &total);
    std::printf("[ variants ] %-60s %.3f GB held by the runner (1 slot x 2048 ctx), device free %.2f of %.2f GB\n",
                dir.c_str(), (*r)->memory_bytes() / 1e9, free_now / 1e9, total / 1e9);
    runners.push_back(std::move(*r));
  }
  // Every variant still answers while all are resident.
  for (auto& r : runners) {
    std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701, 29916};
    std::vector<float> logits(r->config().vocab_size);
    ASSERT_TRUE(r->Prefill(0, 0, prompt, absl::MakeSpan(logits)).ok());
    std::vector<int32_t> out(8);
    ASSERT_TRUE(r->DecodeGreedy(0, static_cast<int>(prompt.size()), 1, absl::MakeSpan(out)).ok());
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  }
  size_t free1 = 0;
  cudaMemGetInfo(&free1, &total);
  std::printf("[ variants ] %zu variants resident: %.2f GB of device memory in use by them\n", runners.size(),
              (free0 - free1) / 1e9);
}

}  // namespace
}  // namespace llama::testing
