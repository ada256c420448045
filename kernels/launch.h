// Kernel launch with programmatic dependent launch (PDL, sm_90): a kernel may start while
// its predecessor in the stream is still running. Every kernel of this library follows two
// rules so that this stays correct:
//   1. it calls AllowDependents() early (its successor may then be scheduled), and
//   2. it calls WaitForPrerequisites() before it reads or writes anything that an earlier
//      kernel writes or reads (weights are immutable and may be read before it).
// Because every kernel waits for its predecessor's completion before finishing, completion
// stays in stream order. With PDL off (SetProgrammaticLaunch(false)) launches are ordinary.
// One exception, by the caller's word: data the host or an earlier graph launch wrote may be
// read before the wait inside a replayed graph (LaunchRopeDecodeAttention's positions_final).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

namespace llama::kernels {

void SetProgrammaticLaunch(bool on);
bool ProgrammaticLaunch();
// The shared-memory carve-out hint (percent of the most shared memory; -1: none) that Launch()
// and LaunchClusters() give every launch; process-wide.
void SetLaunchCarveout(int percent);
int LaunchCarveout();

// Multiprocessors of the current device, cached per device; 0 when unknown.
int SmCount();

// Up to two float ranges a kernel clears on its way (ZeroByGrid): the outputs of later
// split-K GEMVs, which accumulate atomically.
struct ZeroSpans {
  float* p[2] = {nullptr, nullptr};
  size_t n[2] = {0, 0};
};

// cluster_x > 0: thread-block clusters of cluster_x blocks along x (more than 8 needs the
// kernel's cudaFuncAttributeNonPortableClusterSizeAllowed).
template <typename... KernelArgs, typename... Args>
cudaError_t LaunchClusters(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                           int cluster_x, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[3];
  int n = 0;
  if (const int carveout = LaunchCarveout(); carveout >= 0) {
    attr[n].id = cudaLaunchAttributePreferredSharedMemoryCarveout;
    attr[n].val.sharedMemCarveout = static_cast<unsigned>(carveout);
    ++n;
  }
  if (cluster_x > 0) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster_x;
    attr[n].val.clusterDim.y = 1;
    attr[n].val.clusterDim.z = 1;
    ++n;
  }
  if (ProgrammaticLaunch()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

template <typename... KernelArgs, typename... Args>
cudaError_t Launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
  return LaunchClusters(kernel, grid, block, smem, stream, 0, std::forward<Args>(args)...);
}

#ifdef __CUDACC__
__device__ __forceinline__ void WaitForPrerequisites() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void AllowDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}
// Block `block` of `blocks` (all blockDim.x threads each) clears its share of p[0, n).
__device__ __forceinline__ void ZeroByGridPart(float* p, size_t n, size_t block, size_t blocks) {
  if (!p) return;
  const size_t threads = blocks * blockDim.x;
  for (size_t i = block * blockDim.x + threadIdx.x; i < n; i += threads) p[i] = 0.f;
}
// Zeroes p[0, n) using every thread of the grid (after WaitForPrerequisites): how a split-K
// GEMV output is cleared by a kernel that runs before it, instead of a memset node.
__device__ __forceinline__ void ZeroByGrid(float* p, size_t n) {
  ZeroByGridPart(p, n, (static_cast<size_t>(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x,
                 static_cast<size_t>(gridDim.x) * gridDim.y * gridDim.z);
}
#endif

}  // namespace llama::kernels
