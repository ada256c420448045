// CUDA ModelRunner: buffers, the forward pass (CudaRunner::Forward, read top to bottom),
// CUDA-graph replay of decode steps and the on-device greedy loop.
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
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/dense_matmul.h"
#include "kernels/embedding.h"
#include "kernels/gptq_matmul.h"
#include "kernels/launch.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"

namespace llama {
namespace {

using cuda::DeviceArena;
using cuda::DeviceLayer;
using cuda::DeviceModel;
using cuda::DeviceProjection;

absl::Status Check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA ", what, " failed: ", cudaGetErrorString(err)));
}
absl::Status CheckBlas(cublasStatus_t st, const char* what) {
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

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens, absl::Span<float> logits,
                       bool all_logits) override;
  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override;
  absl::Status DecodeGreedy(int slot, int pos, int32_t token, absl::Span<int32_t> out_tokens) override;

 private:
  absl::Status Forward(const Batch& b);
  absl::Status MatMul(const std::vector<DeviceProjection>& parts, const Act& act, float* out, int ld_out, int rows,
                      bool accumulate);
  absl::Status Materialize(const Act& act, int rows);
  Act Half(__half* x, int K) const;
  Act RmsNormed(const float* resid, const float* weight) const;
  void PickSplits(int max_keys, Batch* b) const;
  absl::Status Run(const Batch& b, bool greedy);  // graph replay when possible
  absl::Status UploadIo(int rows);
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
  int dim_ = 0, ffn_ = 0, heads_ = 0, kv_heads_ = 0, hd_ = 0, vocab_ = 0, qkv_n_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::mutex mu_;
  std::map<std::tuple<int, int, int, bool, bool>, cudaGraphExec_t> graphs_;

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
  __half* dequant_ = nullptr;   // prefill: one dequantized weight
  void* attn_scratch_ = nullptr;
  float2* part_ml_ = nullptr;
  float* part_acc_ = nullptr;
  uint32_t* attn_arrivals_ = nullptr;  // [rows, heads] split counters of decode attention
  __half* k_cache_ = nullptr;
  __half* v_cache_ = nullptr;
  float2* rope_table_ = nullptr;  // [max_ctx][hd / 2] (cos, sin)
  size_t layer_cache_elems_ = 0;
};

CudaRunner::~CudaRunner() {
  cudaSetDevice(opts_.device);
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
  if (h_io_) cudaFreeHost(h_io_);
  arena_.FreeAll();
}

absl::Status CudaRunner::Init() {
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  kernels::SetProgrammaticLaunch(copts_.programmatic_launch);
  kernels::SetGemvTuning({copts_.stream_gemv, copts_.gemv_blocks_per_sm, copts_.gemv_l2_prefetch, copts_.gemv_ring_deep,
                          copts_.warp_gemv, copts_.gemv_warp_kb, false, copts_.gemv_rms_in_block,
                          copts_.gemv_warp_target_blocks});
  cudaDeviceProp prop{};
  RETURN_IF_ERROR(Check(cudaGetDeviceProperties(&prop, opts_.device), "cudaGetDeviceProperties"));
  device_name_ = absl::StrCat("cuda:", opts_.device, " (", prop.name, ")");
  dim_ = cfg_.hidden_size;
  ffn_ = cfg_.intermediate_size;
  heads_ = cfg_.num_attention_heads;
  kv_heads_ = cfg_.num_key_value_heads > 0 ? cfg_.num_key_value_heads : heads_;
  hd_ = cfg_.head_dim > 0 ? cfg_.head_dim : dim_ / heads_;
  vocab_ = cfg_.vocab_size;
  qkv_n_ = (heads_ + 2 * kv_heads_) * hd_;
  max_ctx_ = opts_.max_context > 0 ? opts_.max_context : cfg_.max_position_embeddings;
  if (opts_.max_slots < 1 || max_ctx_ < 1)
    return absl::InvalidArgumentError(absl::StrCat("CUDA runner: max_slots ", opts_.max_slots, " and context ",
                                                   max_ctx_, " must be positive"));
  const int sk = copts_.attn_split_keys;
  if (sk != 0 && sk != 32 && sk != 64 && sk != kernels::kAttnSplitKeys)
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA runner: attn_split_keys ", sk, " must be 0 (by context), 32, 64 or 128"));
  rows_cap_ = std::max({std::min(copts_.prefill_chunk, max_ctx_), opts_.max_slots, kernels::kGemvMaxRows});
  max_splits_ = (max_ctx_ + 31) / 32;  // the smallest split size

  RETURN_IF_ERROR(Check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  RETURN_IF_ERROR(CheckBlas(cublasCreate(&blas_), "cublasCreate"));
  RETURN_IF_ERROR(CheckBlas(cublasSetStream(blas_, stream_), "cublasSetStream"));

  auto m = cuda::UploadModel(*weights_, arena_, copts_.tensor_core_gemv);
  if (!m.ok()) return m.status();
  model_ = std::move(*m);
  weights_.reset();  // the device copy is all that is needed from here on

  const size_t R = rows_cap_;
  const int attn_rows = std::max(opts_.max_slots, kernels::kGemvMaxRows);
  const size_t io_count = 3 * R + 1 + max_ctx_ + 1;
#define ALLOC(ptr, T, count, what)                                \
  do {                                                            \
    auto _p = arena_.AllocArray<T>((count), (what));              \
    if (!_p.ok()) return _p.status();                             \
    ptr = *_p;                                                    \
  } while (0)
  ALLOC(io_, int32_t, io_count, "token/slot/position buffers");
  d_tokens_ = io_;
  d_slots_ = io_ + R;
  d_pos_ = io_ + 2 * R;
  d_step_ = io_ + 3 * R;
  d_hist_ = io_ + 3 * R + 1;
  ALLOC(x_, float, R * dim_, "activations x");
  ALLOC(xn_, __half, R * std::max(dim_, heads_ * hd_), "activations xn");
  ALLOC(qkv_, float, R * qkv_n_, "activations qkv");
  ALLOC(qkv_odd_, float, static_cast<size_t>(kernels::kGemvMaxRows) * qkv_n_, "activations qkv (odd layers)");
  ALLOC(q_, __half, R * heads_ * hd_, "activations q");
  ALLOC(attn_, __half, R * heads_ * hd_, "activations attn");
  ALLOC(gate_up_, float, R * 2 * ffn_, "activations gate_up");
  ALLOC(h_, __half, R * ffn_, "activations h");
  ALLOC(xfrag_, __half, 3 * std::max({dim_, ffn_, heads_ * hd_}), "GEMV input scratch");
  ALLOC(xsum_, float, 3 * std::max({dim_, ffn_, heads_ * hd_}) / 32 + 1, "GEMV input group sums");
  ALLOC(logits_, float, R * vocab_, "logits");
  ALLOC(dequant_, __half, std::max<size_t>(model_.max_dequant_elems, 8), "prefill dequant scratch");
  const kernels::AttnShape shape{heads_, kv_heads_, hd_, max_ctx_};
  const size_t per_row = kernels::PrefillAttentionScratchBytes(shape, 1);
  // Query blocks of <= 256 rows: causal blocks skip most masked keys, and S stays near L2 size.
  q_block_ = static_cast<int>(std::clamp<size_t>((size_t{512} << 20) / per_row, 16, std::min<size_t>(R, 256)));
  ALLOC(attn_scratch_, char, kernels::PrefillAttentionScratchBytes(shape, q_block_), "prefill attention scratch");
  ALLOC(part_ml_, float2, static_cast<size_t>(attn_rows) * heads_ * max_splits_, "attention partials");
  ALLOC(part_acc_, float, static_cast<size_t>(attn_rows) * heads_ * max_splits_ * hd_, "attention partials");
  ALLOC(attn_arrivals_, uint32_t, static_cast<size_t>(attn_rows) * heads_, "attention split counters");
  layer_cache_elems_ = static_cast<size_t>(opts_.max_slots) * max_ctx_ * kv_heads_ * hd_;
  const size_t cache_elems = layer_cache_elems_ * cfg_.num_hidden_layers;
  ALLOC(k_cache_, __half, cache_elems, absl::StrFormat("K cache (%d slots x %d positions)", opts_.max_slots, max_ctx_));
  ALLOC(v_cache_, __half, cache_elems, absl::StrFormat("V cache (%d slots x %d positions)", opts_.max_slots, max_ctx_));
  ALLOC(rope_table_, float2, static_cast<size_t>(max_ctx_) * (hd_ / 2), "RoPE table");
#undef ALLOC
  RETURN_IF_ERROR(Check(kernels::LaunchRopeTable(rope_table_, max_ctx_, hd_, cfg_.rope_theta, stream_), "rope table"));
  RETURN_IF_ERROR(Check(cudaMemset(attn_arrivals_, 0, static_cast<size_t>(attn_rows) * heads_ * 4), "cudaMemset"));
  RETURN_IF_ERROR(Check(cudaMemset(k_cache_, 0, cache_elems * 2), "cudaMemset K cache"));
  RETURN_IF_ERROR(Check(cudaMemset(v_cache_, 0, cache_elems * 2), "cudaMemset V cache"));
  RETURN_IF_ERROR(Check(cudaMallocHost(reinterpret_cast<void**>(&h_io_), io_count * sizeof(int32_t)), "cudaMallocHost"));
  return Check(cudaDeviceSynchronize(), "upload");
}

Act CudaRunner::Half(__half* x, int K) const {
  Act a;
  a.in.kind = kernels::GemvSource::kHalf;
  a.in.x = x;
  a.in.ldx = K;
  a.K = K;
  a.scratch = x;
  return a;
}

Act CudaRunner::RmsNormed(const float* resid, const float* weight) const {
  Act a;
  a.in.kind = kernels::GemvSource::kRmsNorm;
  a.in.src = resid;
  a.in.norm_weight = weight;
  a.in.eps = cfg_.rms_norm_eps;
  a.K = dim_;
  a.scratch = xn_;
  return a;
}

// Runs the standalone kernel for an activation the consumer cannot compute itself.
absl::Status CudaRunner::Materialize(const Act& a, int rows) {
  const kernels::AttnShape attn{heads_, kv_heads_, hd_, max_ctx_};
  switch (a.in.kind) {
    case kernels::GemvSource::kHalf:
      return absl::OkStatus();
    case kernels::GemvSource::kRmsNorm:
      return Check(kernels::LaunchRmsNorm(a.in.src, a.K, a.in.norm_weight, a.K, a.in.eps, a.scratch, a.K, rows, stream_),
                   "rmsnorm");
    case kernels::GemvSource::kSwiGlu:
      return Check(kernels::LaunchSwiGlu(a.in.src, a.K, a.scratch, rows, stream_), "swiglu");
    case kernels::GemvSource::kAttention:
      return Check(kernels::LaunchAttentionCombine(a.in.attn_ml, a.in.attn_acc, attn, rows, a.in.attn_splits,
                                                   a.scratch, stream_), "attention combine");
  }
  return absl::InternalError("unknown activation kind");
}

// y (+)= x W for each part, writing its columns of `out`. Decode rows (<= 8): split-K GEMV
// with atomic adds (a non-accumulating `out` must have been zeroed by an earlier kernel),
// computing x in its prologue when every part is quantized. Prefill rows: x materialized
// in fp16, weights dequantized to fp16, cuBLAS (beta = 1 accumulates).
absl::Status CudaRunner::MatMul(const std::vector<DeviceProjection>& parts, const Act& act, float* out, int ld_out,
                                int rows, bool accumulate) {
  bool fuse = rows <= kernels::kGemvMaxRows;
  for (const DeviceProjection& p : parts) fuse = fuse && p.quantized;
  kernels::GemvInput in = act.in;
  in.xfrag = xfrag_;
  in.xsum = xsum_;
  if (!fuse && in.kind != kernels::GemvSource::kHalf) {
    RETURN_IF_ERROR(Materialize(act, rows));
    in = Half(act.scratch, act.K).in;
  }
  if (rows <= kernels::kGemvMaxRows) {
    for (const DeviceProjection& p : parts) {
      RETURN_IF_ERROR(p.quantized
                          ? Check(kernels::LaunchGptqGemv(p.gptq, in, out + p.col, ld_out, rows, stream_), "gptq gemv")
                          : Check(kernels::LaunchDenseGemv(p.dense, p.K, p.N, in.x, in.ldx, out + p.col, ld_out, rows,
                                                           true, stream_),
                                  "dense gemv"));
    }
    return absl::OkStatus();
  }
  for (const DeviceProjection& p : parts) {
    const float beta = accumulate ? 1.f : 0.f;
    if (p.quantized) {
      RETURN_IF_ERROR(Check(kernels::LaunchGptqDequant(p.gptq, dequant_, stream_), "gptq dequant"));
      RETURN_IF_ERROR(CheckBlas(kernels::GemmF16(blas_, rows, p.N, p.K, in.x, in.ldx, dequant_, p.N, false,
                                                 out + p.col, ld_out, 1.f, beta), "gemm"));
    } else {
      RETURN_IF_ERROR(CheckBlas(kernels::GemmF16(blas_, rows, p.N, p.K, in.x, in.ldx, p.dense, p.K, true,
                                                 out + p.col, ld_out, 1.f, beta), "gemm"));
    }
  }
  return absl::OkStatus();
}

// The model, one token row per sequence position: the same code serves prefill chunks and
// batched decode steps (and is what the decode CUDA graphs capture). With <= 8 rows the
// projections are split-K GEMVs that accumulate atomically, so their outputs are zeroed
// ahead by an earlier kernel (embedding: the first qkv; attention: gate_up and the next qkv),
// RMSNorm and SwiGLU run inside the GEMV that consumes them, and the decode-attention kernel
// merges its own splits. In a decode step (rows of distinct sequences, up to 1024 keys)
// attention also does RoPE and the K/V write, and layers alternate between two qkv buffers,
// so that attention can clear the next layer's while it reads its own.
absl::Status CudaRunner::Forward(const Batch& b) {
  const int M = b.rows;
  const bool gemv = M <= kernels::kGemvMaxRows;
  // The fused kernel's splits form one thread-block cluster (at most 16 blocks of <= 64
  // keys); longer contexts take RoPE + the split kernel, which merges through global memory.
  const bool fused = gemv && b.distinct && copts_.fuse_rope_attention && b.splits <= kernels::kRopeAttnMaxSplits &&
                     b.split_keys <= 64;
  const kernels::RopeShape rope{heads_, kv_heads_, hd_, max_ctx_};
  const kernels::AttnShape attn{heads_, kv_heads_, hd_, max_ctx_};
  const size_t qkv_count = gemv ? static_cast<size_t>(M) * qkv_n_ : 0;
  const size_t gate_up_count = gemv ? static_cast<size_t>(M) * 2 * ffn_ : 0;
  RETURN_IF_ERROR(Check(kernels::LaunchEmbedding(model_.embed, dim_, d_tokens_, x_, M, stream_,
                                                 gemv ? qkv_ : nullptr, qkv_count), "embedding"));
  const unsigned skip = gemv ? copts_.diagnostic_skip_ops : 0;
  for (int l = 0; l < static_cast<int>(model_.layers.size()); ++l) {
    const DeviceLayer& layer = model_.layers[l];
    float* qkv = fused && l % 2 == 1 ? qkv_odd_ : qkv_;
    // Attention block: x += o(attention(rope(qkv(rmsnorm(x))))).
    if (!(skip & 1))
      RETURN_IF_ERROR(MatMul(layer.qkv, RmsNormed(x_, layer.attn_norm), qkv, qkv_n_, M, /*accumulate=*/false));
    Act attended = Half(attn_, heads_ * hd_);
    if (skip & 2) {
      // left out (diagnostic_skip_ops)
    } else if (fused) {
      kernels::ZeroSpans zero;
      zero.p[0] = gate_up_;
      zero.n[0] = gate_up_count;
      zero.p[1] = qkv == qkv_ ? qkv_odd_ : qkv_;  // the next layer's
      zero.n[1] = qkv_count;
      RETURN_IF_ERROR(Check(kernels::LaunchRopeDecodeAttention(qkv, qkv_n_, rope_table_, KCache(l), VCache(l),
                                                               d_slots_, d_pos_, attn, M, b.splits, b.split_keys,
                                                               b.graph, attn_, stream_, zero),
                            "rope + decode attention"));
    } else {
      RETURN_IF_ERROR(Check(kernels::LaunchRopeStoreKv(qkv_, qkv_n_, d_slots_, d_pos_, rope_table_, rope, q_, KCache(l),
                                                       VCache(l), M, stream_, gemv ? gate_up_ : nullptr, gate_up_count),
                            "rope"));
      if (b.prefill && !gemv) {
        RETURN_IF_ERROR(Check(kernels::LaunchPrefillAttention(blas_, q_, KCache(l), VCache(l), b.slot, b.start, M,
                                                              attn, q_block_, attn_scratch_, attn_, stream_),
                              "prefill attention"));
      } else {
        // Flash-decoding; the last split of each head merges the partials into attn_.
        RETURN_IF_ERROR(Check(kernels::LaunchDecodeAttention(q_, KCache(l), VCache(l), d_slots_, d_pos_, attn, M,
                                                             b.splits, b.split_keys, part_ml_, part_acc_, stream_,
                                                             gemv ? qkv_ : nullptr, qkv_count, attn_, attn_arrivals_),
                              "decode attention"));
      }
    }
    if (!(skip & 4)) RETURN_IF_ERROR(MatMul({layer.wo}, attended, x_, dim_, M, /*accumulate=*/true));
    // MLP block: x += down(swiglu(gate_up(rmsnorm(x)))).
    if (!(skip & 8))
      RETURN_IF_ERROR(MatMul(layer.gate_up, RmsNormed(x_, layer.ffn_norm), gate_up_, 2 * ffn_, M, /*accumulate=*/false));
    Act swiglu;
    swiglu.in.kind = kernels::GemvSource::kSwiGlu;
    swiglu.in.src = gate_up_;
    swiglu.K = ffn_;
    swiglu.scratch = h_;
    if (!(skip & 16)) RETURN_IF_ERROR(MatMul({layer.down}, swiglu, x_, dim_, M, /*accumulate=*/true));
  }
  const int n_out = M - b.logit_row0;
  if (n_out <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(Check(kernels::LaunchRmsNorm(x_ + static_cast<size_t>(b.logit_row0) * dim_, dim_, model_.final_norm,
                                               dim_, cfg_.rms_norm_eps, xn_, dim_, n_out, stream_), "final rmsnorm"));
  if (skip & 32) return absl::OkStatus();
  if (n_out <= kernels::kGemvMaxRows)
    return Check(kernels::LaunchDenseGemv(model_.lm_head, dim_, vocab_, xn_, dim_, logits_, vocab_, n_out, false,
                                          stream_), "lm_head");
  return CheckBlas(kernels::GemmF16(blas_, n_out, vocab_, dim_, xn_, dim_, model_.lm_head, dim_, true, logits_, vocab_,
                                    1.f, 0.f), "lm_head gemm");
}

// Decode attention: short contexts get small splits so that enough blocks run; splits come
// in power-of-two buckets so that few graphs are captured per batch size.
void CudaRunner::PickSplits(int max_keys, Batch* b) const {
  // Measured on an H200 at 2048 keys (tests/bench/RESULTS.md, session 4): 64-key splits
  // beat 32 and 128.
  b->split_keys = copts_.attn_split_keys > 0 ? copts_.attn_split_keys : max_keys <= 512 ? 32 : 64;
  const int need = (max_keys + b->split_keys - 1) / b->split_keys;
  const int cap = (max_ctx_ + b->split_keys - 1) / b->split_keys;
  int s = 1;
  while (s < need) s *= 2;
  b->splits = std::min(s, cap);
}

absl::Status CudaRunner::UploadIo(int rows) {
  const size_t R = rows_cap_;
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(d_tokens_, h_io_, rows * 4, cudaMemcpyHostToDevice, stream_), "copy tokens"));
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(d_slots_, h_io_ + R, rows * 4, cudaMemcpyHostToDevice, stream_), "copy slots"));
  return Check(cudaMemcpyAsync(d_pos_, h_io_ + 2 * R, rows * 4, cudaMemcpyHostToDevice, stream_), "copy positions");
}

// Decode-shaped batches (<= 8 rows) are captured once per (rows, splits, greedy) and replayed.
absl::Status CudaRunner::Run(const Batch& b, bool greedy) {
  if (!copts_.use_graphs || b.rows > kernels::kGemvMaxRows) {
    RETURN_IF_ERROR(Forward(b));
    if (greedy)
      RETURN_IF_ERROR(Check(kernels::LaunchGreedyAdvance(logits_, vocab_, d_tokens_, d_pos_, d_hist_, d_step_, stream_),
                            "greedy advance"));
    return absl::OkStatus();
  }
  const auto key = std::make_tuple(b.rows, b.splits, b.split_keys, b.distinct, greedy);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    Batch cb = b;
    cb.prefill = false;
    cb.graph = true;
    cb.logit_row0 = 0;
    RETURN_IF_ERROR(Check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin capture"));
    absl::Status st = Forward(cb);
    if (st.ok() && greedy)
      st = Check(kernels::LaunchGreedyAdvance(logits_, vocab_, d_tokens_, d_pos_, d_hist_, d_step_, stream_),
                 "greedy advance");
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (!st.ok()) {
      if (graph) cudaGraphDestroy(graph);
      return st;
    }
    RETURN_IF_ERROR(Check(end, "end capture"));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    RETURN_IF_ERROR(Check(inst, "graph instantiate"));
    it = graphs_.emplace(key, exec).first;
  }
  return Check(cudaGraphLaunch(it->second, stream_), "graph launch");
}

absl::Status CudaRunner::Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens, absl::Span<float> logits,
                                 bool all_logits) {
  std::lock_guard<std::mutex> lock(mu_);
  const int T = static_cast<int>(tokens.size());
  if (T == 0) return absl::InvalidArgumentError("Prefill: no tokens");
  if (slot < 0 || slot >= opts_.max_slots)
    return absl::InvalidArgumentError(absl::StrCat("Prefill: slot ", slot, " outside [0, ", opts_.max_slots, ")"));
  if (start_pos < 0 || start_pos + T > max_ctx_)
    return absl::InvalidArgumentError(absl::StrCat("Prefill: positions ", start_pos, "..", start_pos + T - 1,
                                                   " exceed the context of ", max_ctx_));
  const size_t need = static_cast<size_t>(all_logits ? T : 1) * vocab_;
  if (logits.size() < need)
    return absl::InvalidArgumentError(absl::StrCat("Prefill: logits span holds ", logits.size(), " floats, need ", need));
  for (int32_t t : tokens)
    if (t < 0 || t >= vocab_) return absl::InvalidArgumentError(absl::StrCat("Prefill: token id ", t, " outside vocab"));
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  const size_t R = rows_cap_;
  for (int off = 0; off < T; off += rows_cap_) {
    const int rows = std::min(rows_cap_, T - off);
    const bool last = off + rows == T;
    for (int i = 0; i < rows; ++i) {
      h_io_[i] = tokens[off + i];
      h_io_[R + i] = slot;
      h_io_[2 * R + i] = start_pos + off + i;
    }
    RETURN_IF_ERROR(UploadIo(rows));
    Batch b;
    b.rows = rows;
    b.prefill = true;
    b.slot = slot;
    b.start = start_pos + off;
    b.logit_row0 = all_logits ? 0 : (last ? rows - 1 : rows);
    PickSplits(start_pos + off + rows, &b);
    if (rows <= kernels::kGemvMaxRows && b.logit_row0 == 0) {
      RETURN_IF_ERROR(Run(b, false));  // short prompts reuse the decode graphs
    } else {
      RETURN_IF_ERROR(Forward(b));
    }
    const int n_out = rows - b.logit_row0;
    if (n_out > 0) {
      float* dst = logits.data() + (all_logits ? static_cast<size_t>(off) * vocab_ : 0);
      RETURN_IF_ERROR(Check(cudaMemcpyAsync(dst, logits_, sizeof(float) * n_out * vocab_, cudaMemcpyDeviceToHost, stream_),
                            "copy logits"));
    }
    RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream_), "prefill"));
  }
  return absl::OkStatus();
}

absl::Status CudaRunner::Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                                absl::Span<const int32_t> tokens, absl::Span<float> logits) {
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(slots.size());
  if (n == 0) return absl::OkStatus();
  if (positions.size() != slots.size() || tokens.size() != slots.size())
    return absl::InvalidArgumentError("Decode: slots, positions and tokens differ in length");
  if (n > rows_cap_)
    return absl::InvalidArgumentError(absl::StrCat("Decode: batch of ", n, " exceeds ", rows_cap_));
  if (logits.size() < static_cast<size_t>(n) * vocab_)
    return absl::InvalidArgumentError(absl::StrCat("Decode: logits span holds ", logits.size(), " floats, need ",
                                                   static_cast<size_t>(n) * vocab_));
  const size_t R = rows_cap_;
  int max_keys = 0;
  for (int i = 0; i < n; ++i) {
    if (slots[i] < 0 || slots[i] >= opts_.max_slots)
      return absl::InvalidArgumentError(absl::StrCat("Decode: slot ", slots[i], " outside [0, ", opts_.max_slots, ")"));
    if (positions[i] < 0 || positions[i] >= max_ctx_)
      return absl::InvalidArgumentError(absl::StrCat("Decode: position ", positions[i], " outside the context of ", max_ctx_));
    if (tokens[i] < 0 || tokens[i] >= vocab_)
      return absl::InvalidArgumentError(absl::StrCat("Decode: token id ", tokens[i], " outside vocab"));
    h_io_[i] = tokens[i];
    h_io_[R + i] = slots[i];
    h_io_[2 * R + i] = positions[i];
    max_keys = std::max(max_keys, positions[i] + 1);
  }
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  RETURN_IF_ERROR(UploadIo(n));
  Batch b;
  b.rows = n;
  b.distinct = std::set<int>(slots.begin(), slots.end()).size() == slots.size();
  PickSplits(max_keys, &b);
  RETURN_IF_ERROR(Run(b, false));
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(logits.data(), logits_, sizeof(float) * n * vocab_, cudaMemcpyDeviceToHost,
                                        stream_), "copy logits"));
  return Check(cudaStreamSynchronize(stream_), "decode");
}

absl::Status CudaRunner::DecodeGreedy(int slot, int pos, int32_t token, absl::Span<int32_t> out_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(out_tokens.size());
  if (n == 0) return absl::OkStatus();
  if (slot < 0 || slot >= opts_.max_slots)
    return absl::InvalidArgumentError(absl::StrCat("DecodeGreedy: slot ", slot, " outside [0, ", opts_.max_slots, ")"));
  if (pos < 0 || pos + n > max_ctx_)
    return absl::InvalidArgumentError(absl::StrCat("DecodeGreedy: positions ", pos, "..", pos + n - 1,
                                                   " exceed the context of ", max_ctx_));
  if (token < 0 || token >= vocab_)
    return absl::InvalidArgumentError(absl::StrCat("DecodeGreedy: token id ", token, " outside vocab"));
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  const size_t R = rows_cap_;
  h_io_[0] = token;
  h_io_[R] = slot;
  h_io_[2 * R] = pos;
  h_io_[3 * R] = 0;  // step counter
  RETURN_IF_ERROR(UploadIo(1));
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(d_step_, h_io_ + 3 * R, 4, cudaMemcpyHostToDevice, stream_), "copy step"));
  for (int i = 0; i < n; ++i) {
    Batch b;
    b.rows = 1;
    b.distinct = true;
    PickSplits(pos + i + 1, &b);
    RETURN_IF_ERROR(Run(b, true));  // token, position and step advance on the device
  }
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(h_io_ + 3 * R + 1, d_hist_, n * 4, cudaMemcpyDeviceToHost, stream_),
                        "copy tokens"));
  RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream_), "greedy decode"));
  std::copy(h_io_ + 3 * R + 1, h_io_ + 3 * R + 1 + n, out_tokens.begin());
  return absl::OkStatus();
}

}  // namespace

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunnerWithOptions(
    std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options, const CudaOptions& cuda) {
  if (!weights) return absl::InvalidArgumentError("CreateCudaRunner: no weights");
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat("no CUDA device: ",
                                               err != cudaSuccess ? cudaGetErrorString(err) : "0 devices visible"));
  }
  if (options.device < 0 || options.device >= count)
    return absl::InvalidArgumentError(absl::StrCat("CUDA device index ", options.device, " outside [0, ", count, ")"));
  auto runner = std::make_unique<CudaRunner>(std::move(weights), options, cuda);
  absl::Status st = runner->Init();
  if (!st.ok()) return st;  // the destructor frees every partial allocation
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(std::shared_ptr<const ModelWeights> weights,
                                                              const RunnerOptions& options) {
  return CreateCudaRunnerWithOptions(std::move(weights), options, CudaOptions{});
}

}  // namespace llama
