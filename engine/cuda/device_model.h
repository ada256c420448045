// The model as the CUDA kernels see it: fp16 embeddings / lm_head / dense projections,
// GPTQ projections repacked (kernels/README.md), fp32 norms. Built once at load by
// UploadModel; every pointer is owned by the DeviceArena passed in.
#pragma once

#include <cuda_fp16.h>

#include <vector>

#include "absl/status/statusor.h"
#include "engine/cuda/device_arena.h"
#include "engine/weights.h"
#include "kernels/gptq_matmul.h"

namespace llama::cuda {

// One matmul writing columns [col, col + N) of its output buffer.
struct DeviceProjection {
  int K = 0, N = 0, col = 0;
  bool quantized = false;
  kernels::GptqMatrix gptq;       // quantized
  const __half* dense = nullptr;  // [N, K] fp16, when !quantized
  // Quantized, with resident CudaOptions::prefill_weights: W^T fp16 [N, K] in stored row order
  // (kernels::LaunchGptqDequant), kept for prefill GEMMs; null: dequantized per prefill.
  const __half* prefill_weight = nullptr;
};

struct DeviceLayer {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  std::vector<DeviceProjection> qkv;      // one fused [q|k|v] projection, or three
  DeviceProjection wo;
  // Act-order o_proj of one segment: the inverse of its permutation ([H * hd]), where the
  // decode attention kernels write each (head, dim) so that o_proj reads its input in order
  // (kernels::LaunchRopeDecodeAttention's out_perm; CudaOptions::attn_out_perm), and wo
  // without the input permutation for those steps. Null / unset otherwise.
  const int32_t* attn_out_perm = nullptr;
  DeviceProjection wo_in_order;
  std::vector<DeviceProjection> gate_up;  // one fused [gate|up] projection, or two
  DeviceProjection down;
};

struct DeviceModel {
  const __half* embed = nullptr;    // [vocab, dim]
  const __half* lm_head = nullptr;  // [vocab, dim] (the embedding when tied)
  const float* final_norm = nullptr;
  std::vector<DeviceLayer> layers;
  size_t max_dequant_elems = 0;     // largest quantized K*N (prefill dequant scratch)
  int max_permuted_k = 0;           // largest K of a projection with an act-order segment (0: none)
  int fused_qkv_layers = 0, fused_gate_up_layers = 0;
  size_t weight_bytes = 0;
};

// How UploadModel lays the weights out.
struct UploadOptions {
  bool mma_layout = true;              // GPTQ weights in the tensor-core layout where the shapes allow
  bool fold_down_permutation = false;  // engine/act_order_fold.h, on a copy of each layer's gate/up/down
  // The warp GEMV's 4-bit copy of the zero points also for matrices whose zero points are all
  // equal (GptqMatrix::uniform_zero), which the warp GEMV reads only with
  // GemvTuning::warp_uniform_zeros off.
  bool zeros4_if_uniform = true;
};

// Checks shapes the kernels need (InvalidArgument / Unimplemented naming the layer and
// tensor) and uploads. Partial uploads stay in `arena` (the caller frees it on error).
absl::StatusOr<DeviceModel> UploadModel(const ModelWeights& w, DeviceArena& arena, const UploadOptions& opt);

}  // namespace llama::cuda
