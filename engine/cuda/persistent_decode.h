// Whether and how a loaded model runs its one-row decode steps as the persistent decode
// kernel (kernels/decode_step.h): every projection of every layer one fused GPTQ matrix in
// the tensor-core layout with the same uniform group size, a head_dim the kernel takes, and
// a device that launches cooperative kernels. The per-layer table (matrices, GEMV plans,
// norms, cache pointers) is uploaded once; so are the kernel's partials and counters.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/cuda/device_arena.h"
#include "engine/cuda/device_model.h"
#include "kernels/decode_step.h"

namespace llama::cuda {

struct PersistentDecode {
  int grid = 0;                  // 0: not used (the model or device does not fit the kernel)
  kernels::DecodeStepArgs args;  // buffers of the step (x, qkv, ...) are filled in by the runner
};

struct PersistentDecodeShape {
  int heads = 0, kv_heads = 0, head_dim = 0, max_ctx = 0, ffn = 0;
  float eps = 0.f;
  int max_parts = kernels::kDecodeStepMaxParts;
  int blocks_per_sm = 2;
  bool phase_clock = false;  // diagnostic: DecodeStepArgs::clock
};

// k_cache / v_cache: layer l's cache at + l * layer_cache_elems. Errors: allocation only.
absl::StatusOr<PersistentDecode> PlanPersistentDecode(const DeviceModel& m, const PersistentDecodeShape& shape,
                                                      __half* k_cache, __half* v_cache, size_t layer_cache_elems,
                                                      DeviceArena& arena);

// Diagnostic (phase_clock): the last step's phase durations in microseconds, averaged over
// layers: q|k|v, attention, o, gate|up, down, then the whole step. Empty without the clock.
std::vector<double> PhaseMicros(const PersistentDecode& pd);

}  // namespace llama::cuda
