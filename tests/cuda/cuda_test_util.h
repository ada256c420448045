// Helpers for the CUDA tests: device detection (every test skips cleanly without a GPU),
// RAII device buffers, fresh random data and error norms.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace llama::testing {

inline bool HaveCudaDevice() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}

#define SKIP_WITHOUT_CUDA() \
  if (!::llama::testing::HaveCudaDevice()) GTEST_SKIP() << "no CUDA device"

// $LLAMA_FIXTURES_DIR wins over the compiled-in path (the device machine carries a copy).
inline std::string CudaFixturesDir() {
  if (const char* env = std::getenv("LLAMA_FIXTURES_DIR"); env && *env) return env;
  return LLAMA_FIXTURES_DIR;
}
// gtest parameter names for the fixture branches ('-' is not allowed in them).
inline std::string BranchTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}
// A stories260K fixture: "fp32" or a GPTQ branch name.
inline std::string CudaFixtureModelDir(const std::string& name) {
  if (name == "fp32") return CudaFixturesDir() + "/stories260K-fp32";
  return CudaFixturesDir() + "/stories260K-GPTQ/" + name;
}

// Fresh data every run; the seed is printed so a failure can be replayed: LLAMA_TEST_SEED=<seed>.
inline std::mt19937& Rng() {
  static std::mt19937 rng([] {
    const char* env = std::getenv("LLAMA_TEST_SEED");
    const unsigned seed = env && *env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("[ random seed %u ]\n", seed);
    return seed;
  }());
  return rng;
}

inline std::vector<float> RandomFloats(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(Rng());
  return v;
}

// Values as fp16 sees them.
inline std::vector<float> RoundToHalf(std::vector<float> v) {
  for (auto& x : v) x = __half2float(__float2half(x));
  return v;
}
inline std::vector<__half> ToHalf(const std::vector<float>& v) {
  std::vector<__half> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2half(v[i]);
  return out;
}
inline std::vector<float> FromHalf(const std::vector<__half>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __half2float(v[i]);
  return out;
}

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
    // Poison: unwritten outputs show up as NaN / garbage.
    EXPECT_EQ(cudaMemset(p_, 0xff, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { Upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void Upload(const std::vector<T>& host) {
    ASSERT_EQ(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  void Zero() { ASSERT_EQ(cudaMemset(p_, 0, n_ * sizeof(T)), cudaSuccess); }
  std::vector<T> Download() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  T* get() const { return static_cast<T*>(p_); }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_;
};

// ||a - b|| / ||b||; NaN anywhere gives +inf.
inline double RelError(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}
inline double MaxAbsError(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    m = std::max(m, std::abs(a[i] - b[i]));
  }
  return m;
}

}  // namespace llama::testing
