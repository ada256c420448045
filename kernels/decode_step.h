// The persistent decode step: every layer of one decode row in ONE cooperative kernel, for
// models whose projections all run the warp GEMV (one fused GPTQ matrix each, tensor-core
// layout, uniform groups of 32/64/128 rows). Why: in the layered path each of the 5 kernels
// per layer costs ~3-4 us of launch, ramp and drain even with PDL (tests/bench/RESULTS.md,
// session 4); here the blocks stay resident and meet at grid barriers, and before waiting at
// one a block already issues the weight loads of its next GEMV block (or the K/V copies of
// its attention part), which depend on nothing the barrier guards.
//
// Per layer, separated by grid barriers (kernels/decode_step.cu reads top to bottom):
//   q|k|v  += rmsnorm(x) Wqkv                     (qkv zero on entry)
//   attn    = attention(rope(q), rope(k), v)      (K/V write at pos; gate_up cleared)
//   x      += attn Wo                              (qkv cleared for the next layer)
//   gate_up += rmsnorm(x) Wgu
//   x      += swiglu(gate_up) Wdown
// Attention: the keys 0..pos of each head are cut into P parts (P fills the grid, each part
// >= 16 keys, P <= max_parts), each streamed through shared memory in tiles of 32 keys with
// an online softmax; the last part of a head to finish (arrival counter) merges the parts.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/gptq_matmul.h"

namespace llama::kernels {

constexpr int kDecodeStepMaxParts = 32;  // attention parts per head

struct DecodeStepLayer {
  GptqMatrix qkv, wo, gate_up, down;  // gate_up: [gate | up], 2 * ffn columns
  GemvWarpPlan plan[4];               // PlanGptqGemvWarp for qkv, wo, gate_up, down
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  __half* k_cache = nullptr;          // this layer's [slots][max_ctx][KVH][hd]
  __half* v_cache = nullptr;
};

struct DecodeStepArgs {
  const DecodeStepLayer* layers = nullptr;  // device array [n_layers]
  int n_layers = 0;
  int group_rows = 0;   // of every projection
  AttnShape shape;
  int ffn = 0;          // intermediate size
  float eps = 0.f;
  const float2* rope_table = nullptr;     // [max_ctx][hd / 2] (rope.h)
  const int32_t* slot = nullptr;          // the row's slot and position (device)
  const int32_t* pos = nullptr;
  float* x = nullptr;        // [dim] residual stream, updated in place
  float* qkv = nullptr;      // [(H + 2 KVH) hd], zero on entry (left zero)
  float* gate_up = nullptr;  // [2 ffn]
  __half* attn = nullptr;    // [H hd]
  float2* part_ml = nullptr; // [H * kDecodeStepMaxParts]
  float* part_acc = nullptr; // [H * kDecodeStepMaxParts * hd]
  uint32_t* arrivals = nullptr;  // [H], zero (left zero)
  uint32_t* barrier = nullptr;   // one counter, zero on entry
  int max_parts = kDecodeStepMaxParts;
  int blocks_per_sm = 2;         // 2 or 3: the kernel's register budget (launch bounds)
  // Diagnostic, or null: [5 n_layers + 1] %globaltimer ns when block 0 starts each phase
  // (layer l: 5 l q|k|v, +1 attention, +2 o, +3 gate|up, +4 down; last: the end).
  unsigned long long* clock = nullptr;
  // Diagnostic: bit i leaves phase i's work out (1 q|k|v, 2 attention, 4 o, 8 gate|up,
  // 16 down); the barriers stay. Outputs are garbage.
  unsigned skip = 0;
};

// Blocks of the cooperative grid (all resident at once: at most blocks_per_sm per SM) for
// this group size and head_dim; 0 when the kernel cannot run (no device, unsupported shape).
// Plans for its GEMVs come from PlanGptqGemvWarp(w, blocks).
int DecodeStepGridBlocks(int group_rows, int head_dim, int blocks_per_sm);
// The whole step; `grid` from DecodeStepGridBlocks. Launched cooperatively (no PDL): it
// starts after everything before it in the stream.
cudaError_t LaunchDecodeStep(const DecodeStepArgs& a, int grid, cudaStream_t stream);

}  // namespace llama::kernels
