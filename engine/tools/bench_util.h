// Helpers shared by the benchmark tools (llama_bench, gemv_bench, gemm_bench).
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#ifdef LLAMA_HAVE_CUDA
#include <cuda_runtime_api.h>

// A CUDA call that must succeed: else the tool prints where and exits 1.
#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)
#endif

namespace llama::bench {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

#ifdef LLAMA_HAVE_CUDA
// Median seconds, by CUDA events on stream s, of `repeat` calls of run() (after two untimed
// ones), each preceded by prepare() outside the timed span.
template <typename P, typename R>
double MedianSeconds(cudaStream_t s, int repeat, P&& prepare, R&& run) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<double> t;
  for (int r = 0; r < repeat + 2; ++r) {
    prepare();
    CK(cudaEventRecord(e0, s));
    run();
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (r >= 2) t.push_back(ms * 1e-3);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return Median(t);
}
#endif

// Device-to-device copy bandwidth of `device` in bytes/s, read + write counted (median of 10
// copies of 1 GiB after a warm-up); 0 without CUDA or when the buffers do not fit.
inline double CopyBandwidth(int device) {
#ifdef LLAMA_HAVE_CUDA
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  cudaSetDevice(device);
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
  cudaMemset(a, 1, bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  std::vector<double> t;
  for (int i = 0; i < 10; ++i) {
    cudaEventRecord(e0);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    t.push_back(ms / 1e3);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / Median(t);
#else
  (void)device;
  return 0;
#endif
}

}  // namespace llama::bench
