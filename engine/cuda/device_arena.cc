#include "engine/cuda/device_arena.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_format.h"

namespace llama::cuda {

DeviceArena::~DeviceArena() { FreeAll(); }

void DeviceArena::FreeAll() {
  if (ptrs_.empty()) return;
  cudaSetDevice(device_);
  for (void* p : ptrs_) cudaFree(p);
  ptrs_.clear();
  bytes_ = 0;
}

absl::StatusOr<void*> DeviceArena::Alloc(size_t bytes, std::string_view what) {
  if (bytes == 0) bytes = 16;
  size_t free_b = 0, total_b = 0;
  if (budget_ != 0 && bytes_ + bytes > budget_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "out of GPU memory on cuda:%d: %s needs %d bytes, %d bytes already held, memory budget %d bytes",
        device_, what, bytes, bytes_, budget_));
  }
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear
    cudaMemGetInfo(&free_b, &total_b);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "out of GPU memory on cuda:%d: %s needs %d bytes, %d bytes already held by this model, "
        "%d of %d bytes free (%s)",
        device_, what, bytes, bytes_, free_b, total_b, cudaGetErrorString(err)));
  }
  ptrs_.push_back(p);
  bytes_ += bytes;
  return p;
}

absl::StatusOr<void*> DeviceArena::Upload(const void* host, size_t bytes, std::string_view what) {
  auto p = Alloc(bytes, what);
  if (!p.ok()) return p.status();
  if (bytes == 0) return p;
  const cudaError_t err = cudaMemcpy(*p, host, bytes, cudaMemcpyHostToDevice);
  if (err != cudaSuccess)
    return absl::InternalError(absl::StrFormat("uploading %s (%d bytes) to cuda:%d failed: %s", what, bytes,
                                               device_, cudaGetErrorString(err)));
  return p;
}

}  // namespace llama::cuda
