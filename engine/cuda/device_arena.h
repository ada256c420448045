// Owner of every device allocation a CUDA runner makes: frees all of them on destruction
// (so a failed load leaves nothing behind) and enforces an optional byte budget.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace llama::cuda {

class DeviceArena {
 public:
  // budget_bytes == 0: no budget beyond what the device has.
  DeviceArena(int device, size_t budget_bytes) : device_(device), budget_(budget_bytes) {}
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // ResourceExhausted (naming `what`, the size, what is held and what is free) on failure.
  absl::StatusOr<void*> Alloc(size_t bytes, std::string_view what);
  template <typename T>
  absl::StatusOr<T*> AllocArray(size_t count, std::string_view what) {
    auto p = Alloc(count * sizeof(T), what);
    if (!p.ok()) return p.status();
    return static_cast<T*>(*p);
  }
  // Alloc + synchronous host-to-device copy.
  absl::StatusOr<void*> Upload(const void* host, size_t bytes, std::string_view what);
  template <typename T>
  absl::StatusOr<T*> UploadVector(const std::vector<T>& v, std::string_view what) {
    auto p = Upload(v.data(), v.size() * sizeof(T), what);
    if (!p.ok()) return p.status();
    return static_cast<T*>(*p);
  }
  size_t bytes() const { return bytes_; }
  void FreeAll();

 private:
  int device_;
  size_t budget_;
  size_t bytes_ = 0;
  std::vector<void*> ptrs_;
};

}  // namespace llama::cuda
