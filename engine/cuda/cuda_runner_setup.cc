// CUDA ModelRunner setup: device buffers, the persistent-decode plan, teardown, and the
// factory functions of engine/cuda/cuda_runner.h.
#include "engine/cuda/cuda_runner_internal.h"

namespace llama {
namespace cuda_internal {

CudaRunner::~CudaRunner() {
  cudaSetDevice(opts_.device);
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
  if (h_io_) cudaFreeHost(h_io_);
  if (h_ids_) cudaFreeHost(h_ids_);
  if (h_rows_) cudaFreeHost(h_rows_);
  for (cudaEvent_t e : ahead_done_)
    if (e) cudaEventDestroy(e);
  arena_.FreeAll();
}

namespace {
// The GPTQ projections of a layer (their prefill weights: SetUpPrefillWeights).
std::vector<DeviceProjection*> QuantizedProjections(DeviceLayer& layer) {
  std::vector<DeviceProjection*> parts;
  for (DeviceProjection* p : {&layer.wo, &layer.down})
    if (p->quantized) parts.push_back(p);
  for (std::vector<DeviceProjection>* group : {&layer.qkv, &layer.gate_up})
    for (DeviceProjection& p : *group)
      if (p.quantized) parts.push_back(&p);
  return parts;
}
}  // namespace

// CudaOptions::prefill_weights: kResident keeps the copies (or fails the load), kAuto keeps
// them when KeepResidentPrefillWeights says the device has room, else (and for kPerCall)
// prefill dequantizes each projection into one scratch buffer.
absl::Status CudaRunner::SetUpPrefillWeights() {
  size_t copy_bytes = 0;
  for (DeviceLayer& layer : model_.layers)
    for (const DeviceProjection* p : QuantizedProjections(layer)) copy_bytes += sizeof(__half) * p->N * p->K;
  const PrefillWeights mode = copts_.prefill_weights;
  bool keep = mode == PrefillWeights::kResident && copy_bytes > 0;
  if (mode == PrefillWeights::kAuto && copy_bytes > 0) {
    size_t free = 0, total = 0;
    keep = cudaMemGetInfo(&free, &total) == cudaSuccess && KeepResidentPrefillWeights(free, total, copy_bytes) &&
           (copts_.memory_budget_bytes == 0 || arena_.bytes() + copy_bytes <= copts_.memory_budget_bytes);
    cudaGetLastError();
  }
  if (keep) {
    const absl::Status st = KeepPrefillWeights();
    if (st.ok()) {
      prefill_resident_ = true;
      return st;
    }
    if (mode == PrefillWeights::kResident) return st;
    // kAuto lost the memory to someone else meanwhile: projections without a copy
    // dequantize per call.
  }
  auto d = arena_.AllocArray<__half>(std::max<size_t>(model_.max_dequant_elems, 8), "prefill dequant scratch");
  if (!d.ok()) return d.status();
  dequant_ = *d;
  return absl::OkStatus();
}

// Every GPTQ projection dequantized once, kept resident (SetUpPrefillWeights).
absl::Status CudaRunner::KeepPrefillWeights() {
  for (DeviceLayer& layer : model_.layers) {
    for (DeviceProjection* p : QuantizedProjections(layer)) {
      auto w = arena_.AllocArray<__half>(static_cast<size_t>(p->N) * p->K, "prefill fp16 weights");
      if (!w.ok()) return w.status();
      RETURN_IF_ERROR(Check(kernels::LaunchGptqDequant(p->gptq, *w, stream_), "gptq dequant"));
      p->prefill_weight = *w;
    }
  }
  return Check(cudaStreamSynchronize(stream_), "prefill fp16 weights");
}

absl::Status CudaRunner::Init() {
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  kernels::SetProgrammaticLaunch(copts_.programmatic_launch);
  kernels::SetGemvTuning({copts_.stream_gemv, copts_.gemv_blocks_per_sm, copts_.gemv_l2_prefetch, copts_.gemv_ring_deep,
                          copts_.warp_gemv, copts_.gemv_warp_kb, false, copts_.gemv_rms_in_block,
                          copts_.gemv_warp_target_blocks, copts_.gemv_one_trip_input, copts_.gemv_row_gather,
                          copts_.gemv_group_slots, copts_.gemv_packed_zeros, copts_.gemv_uniform_zeros,
                          copts_.gemv_g32_wide, copts_.gemv_single_kernel});
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
  if (copts_.rope_split_attention < 0 || copts_.rope_split_attention > 2)
    return absl::InvalidArgumentError(absl::StrCat("CUDA runner: rope_split_attention ", copts_.rope_split_attention,
                                                   " must be 0 (never), 1 (past 1024 keys) or 2 (always)"));
  if (copts_.attn_long_splits < 0 || copts_.attn_long_splits > 64)
    return absl::InvalidArgumentError(absl::StrCat("CUDA runner: attn_long_splits ", copts_.attn_long_splits,
                                                   " must be in [0, 64]"));
  if (copts_.persistent_attn_parts < 1 || copts_.persistent_attn_parts > kernels::kDecodeStepMaxParts)
    return absl::InvalidArgumentError(absl::StrCat("CUDA runner: persistent_attn_parts ", copts_.persistent_attn_parts,
                                                   " must be in [1, ", kernels::kDecodeStepMaxParts, "]"));
  if (copts_.persistent_blocks_per_sm != 2 && copts_.persistent_blocks_per_sm != 3)
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA runner: persistent_blocks_per_sm ", copts_.persistent_blocks_per_sm, " must be 2 or 3"));
  rows_cap_ = std::max({std::min(copts_.prefill_chunk, max_ctx_), opts_.max_slots, kernels::kGemvMaxRows});
  max_splits_ = (max_ctx_ + 31) / 32;  // the smallest split size

  RETURN_IF_ERROR(Check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  RETURN_IF_ERROR(CheckBlas(cublasCreate(&blas_), "cublasCreate"));
  RETURN_IF_ERROR(CheckBlas(cublasSetStream(blas_, stream_), "cublasSetStream"));

  cuda::UploadOptions up;
  up.mma_layout = copts_.tensor_core_gemv;
  up.fold_down_permutation = copts_.fold_down_permutation;
  up.zeros4_if_uniform = !copts_.gemv_uniform_zeros;  // else the warp GEMV reads none of those
  auto m = cuda::UploadModel(*weights_, arena_, up);
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
  ALLOC(d_rows_, kernels::SampleRow, R, "sampling rows");
  if (model_.max_permuted_k > 0) ALLOC(xperm_, __half, R * model_.max_permuted_k, "prefill x in act-order");
  const kernels::AttnShape shape{heads_, kv_heads_, hd_, max_ctx_};
  flash_prefill_ = copts_.flash_prefill && kernels::FlashPrefillFits(shape);
  if (!flash_prefill_) {  // S and P of the cuBLAS path
    const size_t per_row = kernels::PrefillAttentionScratchBytes(shape, 1);
    // Query blocks of <= 256 rows: causal blocks skip most masked keys, and S stays near L2 size.
    q_block_ = static_cast<int>(std::clamp<size_t>((size_t{512} << 20) / per_row, 16, std::min<size_t>(R, 256)));
    ALLOC(attn_scratch_, char, kernels::PrefillAttentionScratchBytes(shape, q_block_), "prefill attention scratch");
  }
  ALLOC(part_ml_, float2, static_cast<size_t>(attn_rows) * heads_ * max_splits_, "attention partials");
  ALLOC(part_acc_, float, static_cast<size_t>(attn_rows) * heads_ * max_splits_ * hd_, "attention partials");
  ALLOC(attn_arrivals_, uint32_t, static_cast<size_t>(attn_rows) * heads_, "attention split counters");
  layer_cache_elems_ = static_cast<size_t>(opts_.max_slots) * max_ctx_ * kv_heads_ * hd_;
  const size_t cache_elems = layer_cache_elems_ * cfg_.num_hidden_layers;
  ALLOC(k_cache_, __half, cache_elems, absl::StrFormat("K cache (%d slots x %d positions)", opts_.max_slots, max_ctx_));
  ALLOC(v_cache_, __half, cache_elems, absl::StrFormat("V cache (%d slots x %d positions)", opts_.max_slots, max_ctx_));
  ALLOC(rope_table_, float2, static_cast<size_t>(max_ctx_) * (hd_ / 2), "RoPE table");
#undef ALLOC
  // Decided last, so that kAuto sees what every other buffer leaves free.
  RETURN_IF_ERROR(SetUpPrefillWeights());
  RETURN_IF_ERROR(Check(kernels::LaunchRopeTable(rope_table_, max_ctx_, hd_, cfg_.rope_theta, stream_), "rope table"));
  RETURN_IF_ERROR(Check(cudaMemset(attn_arrivals_, 0, static_cast<size_t>(attn_rows) * heads_ * 4), "cudaMemset"));
  RETURN_IF_ERROR(Check(cudaMemset(k_cache_, 0, cache_elems * 2), "cudaMemset K cache"));
  RETURN_IF_ERROR(Check(cudaMemset(v_cache_, 0, cache_elems * 2), "cudaMemset V cache"));
  RETURN_IF_ERROR(Check(cudaMallocHost(reinterpret_cast<void**>(&h_io_), io_count * sizeof(int32_t)), "cudaMallocHost"));
  RETURN_IF_ERROR(Check(cudaMallocHost(reinterpret_cast<void**>(&h_ids_), 2 * R * sizeof(int32_t)), "cudaMallocHost"));
  // Pinned memory is mapped for the device under unified addressing (every 64-bit CUDA
  // platform); where it is not, the ids are copied after each step instead.
  if (cudaHostGetDevicePointer(reinterpret_cast<void**>(&ids_on_device_), h_ids_, 0) != cudaSuccess) {
    cudaGetLastError();
    ids_on_device_ = nullptr;
  }
  RETURN_IF_ERROR(Check(cudaMallocHost(reinterpret_cast<void**>(&h_rows_), R * sizeof(kernels::SampleRow)), "cudaMallocHost"));
  for (cudaEvent_t& e : ahead_done_)
    RETURN_IF_ERROR(Check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate"));
  if (copts_.persistent_decode && copts_.warp_gemv && copts_.tensor_core_gemv) {
    auto pd = cuda::PlanPersistentDecode(
        model_, {heads_, kv_heads_, hd_, max_ctx_, ffn_, cfg_.rms_norm_eps, copts_.persistent_attn_parts,
                 copts_.persistent_blocks_per_sm, copts_.diagnostic_phase_clock}, k_cache_,
        v_cache_, layer_cache_elems_, arena_);
    if (!pd.ok()) return pd.status();
    persistent_ = std::move(*pd);
    kernels::DecodeStepArgs& a = persistent_.args;
    a.rope_table = rope_table_;
    a.slot = d_slots_;
    a.pos = d_pos_;
    a.x = x_;
    a.qkv = qkv_;
    a.gate_up = gate_up_;
    a.attn = attn_;
  }
  return Check(cudaDeviceSynchronize(), "upload");
}

}  // namespace cuda_internal

using cuda_internal::CudaRunner;

bool CudaPersistentDecodeActive(const ModelRunner& runner) {
  const auto* r = dynamic_cast<const CudaRunner*>(&runner);
  return r && r->persistent_decode();
}

std::vector<double> CudaPersistentDecodePhaseMicros(const ModelRunner& runner) {
  const auto* r = dynamic_cast<const CudaRunner*>(&runner);
  return r ? cuda::PhaseMicros(r->persistent()) : std::vector<double>{};
}

bool CudaPrefillWeightsResident(const ModelRunner& runner) {
  const auto* r = dynamic_cast<const CudaRunner*>(&runner);
  return r && r->prefill_weights_resident();
}

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
  CudaOptions cuda;
  cuda.prefill_weights = options.prefill_weights;
  return CreateCudaRunnerWithOptions(std::move(weights), options, cuda);
}

}  // namespace llama

