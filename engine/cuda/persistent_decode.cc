#include "engine/cuda/persistent_decode.h"

#include <cuda_runtime_api.h>

#include <vector>


namespace llama::cuda {
namespace {

// The projection as one quantized matrix in the tensor-core layout, or null.
const kernels::GptqMatrix* Single(const DeviceProjection& p) {
  return p.quantized && p.gptq.qtiles ? &p.gptq : nullptr;
}
const kernels::GptqMatrix* Single(const std::vector<DeviceProjection>& parts) {
  return parts.size() == 1 ? Single(parts[0]) : nullptr;
}

}  // namespace

absl::StatusOr<PersistentDecode> PlanPersistentDecode(const DeviceModel& m, const PersistentDecodeShape& shape,
                                                      __half* k_cache, __half* v_cache, size_t layer_cache_elems,
                                                      DeviceArena& arena) {
  PersistentDecode pd;
  if (m.layers.empty()) return pd;
  const kernels::GptqMatrix* first = Single(m.layers[0].qkv);
  const int G = first ? first->group_rows : 0;
  const int grid = kernels::DecodeStepGridBlocks(G, shape.head_dim, shape.blocks_per_sm);
  if (grid == 0) {
    cudaGetLastError();  // group size, head_dim or device not taken
    return pd;
  }
  std::vector<kernels::DecodeStepLayer> table(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DeviceLayer& dl = m.layers[l];
    const kernels::GptqMatrix* mats[4] = {Single(dl.qkv), Single(dl.wo), Single(dl.gate_up), Single(dl.down)};
    kernels::DecodeStepLayer& t = table[l];
    for (int i = 0; i < 4; ++i) {
      if (!mats[i] || mats[i]->group_rows != G) return pd;  // not one fused GPTQ matrix with groups of G
      t.plan[i] = kernels::PlanGptqGemvWarp(*mats[i], grid);
      if (t.plan[i].kb == 0) return pd;  // the warp GEMV does not fit
    }
    t.qkv = *mats[0];
    t.wo = *mats[1];
    t.gate_up = *mats[2];
    t.down = *mats[3];
    t.attn_norm = dl.attn_norm;
    t.ffn_norm = dl.ffn_norm;
    t.k_cache = k_cache + l * layer_cache_elems;
    t.v_cache = v_cache + l * layer_cache_elems;
  }
  auto layers = arena.UploadVector(table, "persistent decode layer table");
  if (!layers.ok()) return layers.status();
  const size_t parts = static_cast<size_t>(shape.heads) * kernels::kDecodeStepMaxParts;
  auto ml = arena.AllocArray<float2>(parts, "persistent decode attention partials");
  if (!ml.ok()) return ml.status();
  auto acc = arena.AllocArray<float>(parts * shape.head_dim, "persistent decode attention partials");
  if (!acc.ok()) return acc.status();
  auto counters = arena.AllocArray<uint32_t>(shape.heads + 1, "persistent decode counters");
  if (!counters.ok()) return counters.status();
  if (cudaMemset(*counters, 0, (shape.heads + 1) * sizeof(uint32_t)) != cudaSuccess)
    return absl::InternalError("persistent decode: cudaMemset failed");

  kernels::DecodeStepArgs& a = pd.args;
  if (shape.phase_clock) {
    auto clock = arena.AllocArray<unsigned long long>(5 * table.size() + 1, "persistent decode phase clock");
    if (!clock.ok()) return clock.status();
    a.clock = *clock;
  }
  a.layers = *layers;
  a.n_layers = static_cast<int>(table.size());
  a.group_rows = G;
  a.shape = {shape.heads, shape.kv_heads, shape.head_dim, shape.max_ctx};
  a.ffn = shape.ffn;
  a.eps = shape.eps;
  a.part_ml = *ml;
  a.part_acc = *acc;
  a.arrivals = *counters;
  a.barrier = *counters + shape.heads;
  a.max_parts = shape.max_parts;
  a.blocks_per_sm = shape.blocks_per_sm;
  pd.grid = grid;
  return pd;
}

std::vector<double> PhaseMicros(const PersistentDecode& pd) {
  const kernels::DecodeStepArgs& a = pd.args;
  if (!a.clock) return {};
  std::vector<unsigned long long> t(5 * a.n_layers + 1);
  if (cudaMemcpy(t.data(), a.clock, t.size() * sizeof(t[0]), cudaMemcpyDeviceToHost) != cudaSuccess) return {};
  std::vector<double> us(6, 0.0);
  for (int l = 0; l < a.n_layers; ++l)
    for (int p = 0; p < 5; ++p) us[p] += (t[5 * l + p + 1] - t[5 * l + p]) / 1e3 / a.n_layers;
  us[5] = (t.back() - t.front()) / 1e3;
  return us;
}

}  // namespace llama::cuda
