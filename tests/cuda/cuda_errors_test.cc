// The CUDA backend's load-time errors: no device (where CI runs), out of device memory.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <memory>
#include <string>

#include "engine/cuda/cuda_runner.h"
#include "engine/runner.h"
#include "engine/weights.h"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {
namespace {

// Runs where CI runs: without a device the backend refuses with a clear message.
TEST(CudaErrorsTest, NoDeviceIsUnavailable) {
  if (HaveCudaDevice()) GTEST_SKIP() << "a CUDA device is present";
  auto w = std::make_shared<ModelWeights>();
  auto r = CreateCudaRunner(w, RunnerOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no CUDA device"), std::string::npos) << r.status();
}

TEST(CudaErrorsTest, OutOfMemoryAtLoadIsResourceExhaustedAndFreesEverything) {
  SKIP_WITHOUT_CUDA();
  auto w = LoadModelWeights(CudaFixtureModelDir("main"));
  ASSERT_TRUE(w.ok()) << w.status();
  size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  ASSERT_EQ(cudaFree(nullptr), cudaSuccess);  // context up before measuring
  {
    // Fits the model, not the caches: fails part-way through the allocations.
    auto probe = CreateCudaRunner(*w, RunnerOptions{1, 64, 0, 0});
    ASSERT_TRUE(probe.ok()) << probe.status();
  }
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  CudaOptions tiny;
  tiny.memory_budget_bytes = 200 * 1024;
  RunnerOptions opt;
  opt.max_slots = 8;
  opt.max_context = 512;
  auto r = CreateCudaRunnerWithOptions(*w, opt, tiny);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find("bytes"), std::string::npos) << r.status();
  std::printf("[ oom ] %s\n", std::string(r.status().message()).c_str());
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_after, free_before) << "partial allocations leaked";
}

}  // namespace
}  // namespace llama::testing
