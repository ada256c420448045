// The CUDA runner's class and its internal helpers, shared by cuda_runner.cc (the forward
// pass, graph replay, the ModelRunner calls), cuda_runner_setup.cc (buffers, the
// persistent-decode plan, the factory), cuda_runner_argmax.cc and cuda_runner_sample.cc (the
// steps that pick their tokens on the device). Not part of the engine's interface: include
// engine/cuda/cuda_runner.h instead.
#pragma once

#include "engine/cuda/cuda_runner.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/cuda/device_arena.h"
#include "engine/cuda/device_model.h"
#include "engine/cuda/persistent_decode.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/dense_matmul.h"
#include "kernels/embedding.h"
#include "kernels/flash_prefill.h"
#include "kernels/gptq_matmul.h"
#include "kernels/launch.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"

namespace llama::cuda_internal {

using cuda::DeviceArena;
using cuda::DeviceLayer;
using cuda::DeviceModel;
using cuda::DeviceProjection;

inline absl::Status Check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA ", what, " failed: ", cudaGetErrorString(err)));
}
inline absl::Status CheckBlas(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuBLAS ", what, " failed: status ", static_cast<int>(st)));
}
#define RETURN_IF_ERROR(expr)            \
  do {                                   \
    absl::Status _st = (expr);           \
    if (!_st.ok()) return _st;           \
  } while (0)

// One forward over `rows` token rows whose ids/slots/positions are already on the device.
struct Batch {
  int rows = 0;
  bool prefill = false;   // one slot, consecutive positions start..start+rows-1
  int slot = 0, start = 0;
  int logit_row0 = 0;     // logits for rows [logit_row0, rows)
  int splits = 1;         // decode-attention splits of split_keys keys (cover the longest row)
  int split_keys = kernels::kAttnSplitKeys;
  bool distinct = false;  // every row its own slot (a decode step): RoPE fused into attention
  bool graph = false;     // captured into a graph: slots and positions are final when it replays
};

// An activation feeding a projection: how to compute it (which the split-K GEMV does in its
// prologue), plus the fp16 buffer it is materialized into when the consumer cannot (prefill
// GEMM, dense weights).
struct Act {
  kernels::GemvInput in;
  int K = 0;
  __half* scratch = nullptr;
  const __half* half_src = nullptr;  // kSwiGlu from an fp16 gate_up (prefill_half_outputs), else in.src
};

class CudaRunner final : public ModelRunner {
 public:
  CudaRunner(std::shared_ptr<const ModelWeights> w, const RunnerOptions& o, const CudaOptions& co)
      : weights_(std::move(w)), cfg_(weights_->config), opts_(o), copts_(co), arena_(o.device, co.memory_budget_bytes) {}
  ~CudaRunner() override;

  absl::Status Init();
  const ModelConfig& config() const override { return cfg_; }
  int max_slots() const override { return opts_.max_slots; }
  int max_context() const override { return max_ctx_; }
  std::string device_name() const override { return device_name_; }
  size_t memory_bytes() const override { return arena_.bytes(); }
  bool persistent_decode() const { return persistent_.grid > 0; }
  bool prefill_weights_resident() const { return prefill_resident_; }
  const cuda::PersistentDecode& persistent() const { return persistent_; }

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens, absl::Span<float> logits,
                       bool all_logits) override;
  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override;
  absl::Status DecodeGreedy(int slot, int pos, int32_t token, absl::Span<int32_t> out_tokens) override;
  absl::Status DecodeArgmax(absl::Span<const int> slots, absl::Span<const int> positions,
                            absl::Span<const int32_t> tokens, absl::Span<int32_t> out_ids, bool run_ahead) override;
  absl::Status DecodeSampled(absl::Span<const int> slots, absl::Span<const int> positions,
                             absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                             absl::Span<int32_t> out_ids, bool run_ahead) override;

 private:
  absl::Status Forward(const Batch& b);
  absl::Status MatMul(const std::vector<DeviceProjection>& parts, const Act& act, float* out, int ld_out, int rows,
                      bool accumulate, __half* out_half = nullptr, int gemv_target_blocks = 0);
  absl::Status Materialize(const Act& act, int rows);
  absl::Status SetUpPrefillWeights();
  absl::Status KeepPrefillWeights();
  Act Half(__half* x, int K) const;
  Act RmsNormed(const float* resid, const float* weight) const;
  void PickSplits(int max_keys, Batch* b) const;
  // Whether attention does RoPE and the K/V write itself in this step (decode-shaped rows of
  // distinct sequences; CudaOptions::fuse_rope_attention): Forward picks the kernel, PickSplits
  // the splits for it.
  bool RopeInAttention(const Batch& b) const {
    return b.rows <= kernels::kGemvMaxRows && b.distinct && copts_.fuse_rope_attention;
  }
  enum class Tail { kLogits, kGreedyAdvance, kArgmaxAdvance, kSampleAdvance };  // after the forward pass
  // `parity`: kArgmaxAdvance / kSampleAdvance with CudaOptions::ids_by_kernel write the ids
  // into h_ids_[parity] (a graph per parity).
  absl::Status LaunchTail(const Batch& b, Tail tail, int parity = 0);
  absl::Status Run(const Batch& b, Tail tail, int parity = 0);  // graph replay when possible
  // Decode / DecodeArgmax: validates one step's inputs into h_io_ (tokens, slots,
  // positions) and shapes b (ShapeStep).
  absl::Status StageStep(absl::Span<const int> slots, absl::Span<const int> positions, absl::Span<const int32_t> tokens,
                         Batch* b);
  // A decode step over `slots` whose longest row attends to max_keys keys: rows,
  // distinctness, splits.
  void ShapeStep(absl::Span<const int> slots, int max_keys, Batch* b) const;
  // Enqueues a kArgmaxAdvance or kSampleAdvance step over the inputs already on the device
  // whose ids land in h_ids_[parity] (written by its advance kernel, or copied after it with
  // CudaOptions::ids_by_kernel off), then the record of ahead_done_[parity].
  absl::Status EnqueueChosenStep(const Batch& b, int parity, Tail tail);
  // DecodeArgmax (rows empty: kArgmaxAdvance) and DecodeSampled (kSampleAdvance, rows already
  // validated): one step whose ids the device picks, with run-ahead.
  absl::Status DecodeChosen(absl::Span<const int> slots, absl::Span<const int> positions,
                            absl::Span<const int32_t> tokens, absl::Span<const RowSampling> rows,
                            absl::Span<int32_t> out_ids, bool run_ahead);
  absl::Status UploadIo(int rows);
  absl::Status UploadRows(absl::Span<const RowSampling> rows);  // into d_rows_ (cuda_runner_sample.cc)
  __half* KCache(int layer) const { return k_cache_ + layer * layer_cache_elems_; }
  __half* VCache(int layer) const { return v_cache_ + layer * layer_cache_elems_; }

  std::shared_ptr<const ModelWeights> weights_;
  ModelConfig cfg_;
  RunnerOptions opts_;
  CudaOptions copts_;
  DeviceArena arena_;
  DeviceModel model_;
  std::string device_name_;
  int max_ctx_ = 0, rows_cap_ = 0, max_splits_ = 1, q_block_ = 1;
  bool flash_prefill_ = false;     // prefill attention by kernels::LaunchFlashPrefillAttention
  bool prefill_resident_ = false;  // every GPTQ projection has its fp16 prefill copy
  int dim_ = 0, ffn_ = 0, heads_ = 0, kv_heads_ = 0, hd_ = 0, vocab_ = 0, qkv_n_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::mutex mu_;
  std::map<std::tuple<int, int, int, bool, int, int>, cudaGraphExec_t> graphs_;  // (..., tail, ids parity)

  // Device buffers (arena-owned).
  int32_t* io_ = nullptr;       // [tokens | slots | positions] x rows_cap_, then step, then history
  int32_t* d_tokens_ = nullptr;
  int32_t* d_slots_ = nullptr;
  int32_t* d_pos_ = nullptr;
  int32_t* d_step_ = nullptr;
  int32_t* d_hist_ = nullptr;
  int32_t* h_io_ = nullptr;     // pinned mirror of io_
  float* x_ = nullptr;          // [rows, dim] residual stream
  __half* xn_ = nullptr;        // [rows, dim] normed
  float* qkv_ = nullptr;        // [rows, (H + 2 KVH) hd]
  float* qkv_odd_ = nullptr;    // [kGemvMaxRows, (H + 2 KVH) hd]: odd layers' qkv when RoPE is fused
  __half* q_ = nullptr;         // [rows, H hd]
  __half* attn_ = nullptr;      // [rows, H hd]
  float* gate_up_ = nullptr;    // [rows, 2 ffn]
  __half* h_ = nullptr;         // [rows, ffn]
  __half* xfrag_ = nullptr;     // [3, max(dim, ffn)]: one decode row's GEMV input (warp GEMV)
  float* xsum_ = nullptr;       // its sums per group of 32 rows
  float* logits_ = nullptr;     // [rows, vocab]
  __half* dequant_ = nullptr;   // prefill: one dequantized weight (W^T, stored row order)
  __half* xperm_ = nullptr;     // prefill: [rows, K] x gathered into a segment's act-order
  void* attn_scratch_ = nullptr;
  float2* part_ml_ = nullptr;
  float* part_acc_ = nullptr;
  uint32_t* attn_arrivals_ = nullptr;  // [rows, heads] split counters of decode attention
  __half* k_cache_ = nullptr;
  __half* v_cache_ = nullptr;
  float2* rope_table_ = nullptr;  // [max_ctx][hd / 2] (cos, sin)
  size_t layer_cache_elems_ = 0;
  cuda::PersistentDecode persistent_;  // grid 0: one-row decode runs layer by layer

  // DecodeArgmax's / DecodeSampled's run-ahead: the step enqueued after the last call's (its
  // ids land in h_ids_[ahead_parity_]), and the inputs it was started with (ahead_rows_: empty
  // for an argmax step). Any other call clears it.
  int32_t* h_ids_ = nullptr;  // pinned, [2][rows_cap_]
  int32_t* ids_on_device_ = nullptr;  // h_ids_ as the device addresses it (CudaOptions::ids_by_kernel)
  bool IdsByKernel(Tail tail) const {
    return copts_.ids_by_kernel && ids_on_device_ && (tail == Tail::kArgmaxAdvance || tail == Tail::kSampleAdvance);
  }
  kernels::SampleRow* d_rows_ = nullptr;  // [rows_cap_]: DecodeSampled's rows (draw advances on the device)
  kernels::SampleRow* h_rows_ = nullptr;  // pinned mirror
  std::vector<RowSampling> ahead_rows_;
  cudaEvent_t ahead_done_[2] = {nullptr, nullptr};
  bool ahead_pending_ = false;
  int ahead_parity_ = 0;
  std::vector<int> ahead_slots_, ahead_positions_;
  std::vector<int32_t> ahead_tokens_;
};

}  // namespace llama::cuda_internal
