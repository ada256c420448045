// CUDA ModelRunner: the forward pass (CudaRunner::Forward, read top to bottom), CUDA-graph
// replay of decode steps and the on-device greedy loop. Buffers and the factory:
// cuda_runner_setup.cc; DecodeArgmax: cuda_runner_argmax.cc; DecodeSampled:
// cuda_runner_sample.cc; the class: cuda_runner_internal.h.
#include "engine/cuda/cuda_runner_internal.h"

namespace llama::cuda_internal {

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
      return Check(a.half_src ? kernels::LaunchSwiGlu(a.half_src, a.K, a.scratch, rows, stream_)
                              : kernels::LaunchSwiGlu(a.in.src, a.K, a.scratch, rows, stream_),
                   "swiglu");
    case kernels::GemvSource::kAttention:
      return Check(kernels::LaunchAttentionCombine(a.in.attn_ml, a.in.attn_acc, attn, rows, a.in.attn_splits,
                                                   a.scratch, stream_), "attention combine");
  }
  return absl::InternalError("unknown activation kind");
}

// y (+)= x W for each part, writing its columns of `out`. Decode rows (<= 8): split-K GEMV
// with atomic adds (a non-accumulating `out` must have been zeroed by an earlier kernel),
// computing x in its prologue when every part is quantized. Prefill rows: x materialized
// in fp16, weights as fp16 W^T in stored row order (dequantized per call, or resident with
// CudaOptions::prefill_weights), cuBLAS (beta = 1 accumulates), writing fp16 to `out_half`
// (same layout, no accumulation) instead of `out` when given.
absl::Status CudaRunner::MatMul(const std::vector<DeviceProjection>& parts, const Act& act, float* out, int ld_out,
                                int rows, bool accumulate, __half* out_half, int gemv_target_blocks) {
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
                          ? Check(kernels::LaunchGptqGemv(p.gptq, in, out + p.col, ld_out, rows, stream_,
                                                          gemv_target_blocks),
                                  "gptq gemv")
                          : Check(kernels::LaunchDenseGemv(p.dense, p.K, p.N, in.x, in.ldx, out + p.col, ld_out, rows,
                                                           true, stream_),
                                  "dense gemv"));
    }
    return absl::OkStatus();
  }
  if (out_half && accumulate) return absl::InternalError("MatMul: fp16 output cannot accumulate");
  const float beta = accumulate ? 1.f : 0.f;
  // C[rows, n] = x · W^T[n0.., :] into column col of the output.
  auto gemm = [&](const __half* x, int ldx, const __half* wt, int n, int K, int col) {
    return CheckBlas(out_half ? kernels::GemmF16Half(blas_, rows, n, K, x, ldx, wt, K, true, out_half + col, ld_out)
                              : kernels::GemmF16(blas_, rows, n, K, x, ldx, wt, K, true, out + col, ld_out, 1.f, beta),
                     "gemm");
  };
  for (const DeviceProjection& p : parts) {
    if (!p.quantized) {
      RETURN_IF_ERROR(gemm(in.x, in.ldx, p.dense, p.N, p.K, p.col));
      continue;
    }
    // W^T in stored row order (kept resident, or dequantized now); one GEMM per run of
    // segments sharing a permutation, x gathered into that order first.
    const unsigned skip = copts_.diagnostic_skip_prefill_ops;
    const __half* wt = p.prefill_weight;
    if (!wt) {
      if (!(skip & 64)) RETURN_IF_ERROR(Check(kernels::LaunchGptqDequant(p.gptq, dequant_, stream_), "gptq dequant"));
      wt = dequant_;
    }
    const kernels::GptqMatrix& w = p.gptq;
    for (int s = 0, e = 1; s < w.num_segments; s = e++) {
      while (e < w.num_segments && w.seg[e].perm == w.seg[s].perm) ++e;
      const __half* x = in.x;
      int ldx = in.ldx;
      if (w.seg[s].perm) {
        if (!(skip & 128))
          RETURN_IF_ERROR(Check(kernels::LaunchGatherColumns(in.x, in.ldx, w.seg[s].perm, rows, p.K, xperm_, stream_),
                                "gather x"));
        x = xperm_;
        ldx = p.K;
      }
      const int n0 = w.seg[s].n_begin, n = w.seg[e - 1].n_end - n0;
      RETURN_IF_ERROR(gemm(x, ldx, wt + static_cast<size_t>(n0) * p.K, n, p.K, p.col + n0));
    }
  }
  return absl::OkStatus();
}

// The model, one token row per sequence position: the same code serves prefill chunks and
// batched decode steps (and is what the decode CUDA graphs capture). With <= 8 rows the
// projections are split-K GEMVs that accumulate atomically, so their outputs are zeroed
// ahead by an earlier kernel (embedding: the first qkv; attention: gate_up and the next qkv),
// RMSNorm and SwiGLU run inside the GEMV that consumes them, and the decode-attention kernel
// merges its own splits. In a decode step (rows of distinct sequences) attention also does
// RoPE and the K/V write, and layers alternate between two qkv buffers, so that attention can
// clear the next layer's while it reads its own.
absl::Status CudaRunner::Forward(const Batch& b) {
  const int M = b.rows;
  const bool gemv = M <= kernels::kGemvMaxRows;
  // Decode steps of distinct sequences do RoPE and the K/V write inside attention: in the split
  // kernel (K/V rows in registers, long splits walked in tiles, merged in a cluster up to 16
  // splits; `split_rope`), or with rope_split_attention 1 up to 1024 keys in the cluster kernel
  // (at most 16 blocks of <= 64 keys staged in shared memory; `cluster`); else RoPE then the
  // split kernel of attention.cu.
  const bool rope_inside = RopeInAttention(b);
  const bool cluster = rope_inside && copts_.rope_split_attention < 2 && b.splits <= kernels::kRopeAttnMaxSplits &&
                       b.split_keys <= 64;
  const bool split_rope = rope_inside && !cluster && copts_.rope_split_attention > 0;
  const bool fused = cluster || split_rope;
  // The split kernel's splits merge in a thread-block cluster (else through global memory).
  const bool split_in_cluster = copts_.split_attention_cluster && b.splits <= kernels::kRopeAttnMaxSplits;
  const kernels::RopeShape rope{heads_, kv_heads_, hd_, max_ctx_};
  const kernels::AttnShape attn{heads_, kv_heads_, hd_, max_ctx_};
  const size_t qkv_count = gemv ? static_cast<size_t>(M) * qkv_n_ : 0;
  const size_t gate_up_count = gemv ? static_cast<size_t>(M) * 2 * ffn_ : 0;
  const unsigned skip = gemv ? copts_.diagnostic_skip_ops : copts_.diagnostic_skip_prefill_ops;
  // Prefill-shaped forwards may keep q|k|v and gate|up in fp16, in the fp32 buffers' memory.
  const bool half_out = !gemv && copts_.prefill_half_outputs;
  __half* qkv_half = half_out ? reinterpret_cast<__half*>(qkv_) : nullptr;
  __half* gate_up_half = half_out ? reinterpret_cast<__half*>(gate_up_) : nullptr;
  // One row of its own sequence: every layer in one persistent kernel (kernels/decode_step.cu
  // is this loop for that case), else layer by layer below.
  const bool persistent = persistent_.grid > 0 && M == 1 && b.distinct;
  persistent_.args.skip = skip;
  if (persistent)
    RETURN_IF_ERROR(Check(cudaMemsetAsync(persistent_.args.barrier, 0, sizeof(uint32_t), stream_), "barrier reset"));
  RETURN_IF_ERROR(Check(kernels::LaunchEmbedding(model_.embed, dim_, d_tokens_, x_, M, stream_,
                                                 gemv ? qkv_ : nullptr, qkv_count,
                                                 gemv ? std::clamp(copts_.embed_blocks, 1, dim_) : 1),
                        "embedding"));
  if (persistent)
    RETURN_IF_ERROR(Check(kernels::LaunchDecodeStep(persistent_.args, persistent_.grid, stream_), "decode step"));
  const int layered = persistent ? 0 : static_cast<int>(model_.layers.size());
  for (int l = 0; l < layered; ++l) {
    const DeviceLayer& layer = model_.layers[l];
    float* qkv = fused && l % 2 == 1 ? qkv_odd_ : qkv_;
    // Attention block: x += o(attention(rope(qkv(rmsnorm(x))))).
    if (!(skip & 1))
      RETURN_IF_ERROR(
          MatMul(layer.qkv, RmsNormed(x_, layer.attn_norm), qkv, qkv_n_, M, /*accumulate=*/false, qkv_half,
                 copts_.qkv_gemv_target_blocks));
    Act attended = Half(attn_, heads_ * hd_);
    // Act-order o_proj: attention writes its input in o_proj's order (CudaOptions::attn_out_perm).
    const bool perm_out =
        fused && copts_.attn_out_perm && layer.attn_out_perm != nullptr && (cluster || split_in_cluster);
    const int32_t* out_perm = perm_out ? layer.attn_out_perm : nullptr;
    if (skip & 2) {
      // left out (diagnostic_skip_ops)
    } else if (fused) {
      kernels::ZeroSpans zero;
      zero.p[0] = gate_up_;
      zero.n[0] = gate_up_count;
      zero.p[1] = qkv == qkv_ ? qkv_odd_ : qkv_;  // the next layer's
      zero.n[1] = qkv_count;
      RETURN_IF_ERROR(Check(cluster ? kernels::LaunchRopeDecodeAttention(qkv, qkv_n_, rope_table_, KCache(l),
                                                                          VCache(l), d_slots_, d_pos_, attn, M, b.splits,
                                                                          b.split_keys, b.graph, attn_, stream_, zero,
                                                                          out_perm)
                                    : kernels::LaunchRopeSplitAttention(qkv, qkv_n_, rope_table_, KCache(l), VCache(l),
                                                                        d_slots_, d_pos_, attn, M, b.splits,
                                                                        b.split_keys, b.graph, part_ml_, part_acc_,
                                                                        attn_, attn_arrivals_, stream_, zero,
                                                                        split_in_cluster, out_perm),
                            "rope + decode attention"));
    } else {
      RETURN_IF_ERROR(Check(qkv_half ? kernels::LaunchRopeStoreKv(qkv_half, qkv_n_, d_slots_, d_pos_, rope_table_, rope,
                                                                  q_, KCache(l), VCache(l), M, stream_)
                                     : kernels::LaunchRopeStoreKv(qkv_, qkv_n_, d_slots_, d_pos_, rope_table_, rope, q_,
                                                                  KCache(l), VCache(l), M, stream_,
                                                                  gemv ? gate_up_ : nullptr, gate_up_count),
                            "rope"));
      if (b.prefill && !gemv) {
        RETURN_IF_ERROR(Check(flash_prefill_ ? kernels::LaunchFlashPrefillAttention(q_, KCache(l), VCache(l), b.slot,
                                                                                    b.start, M, attn, attn_, stream_)
                                             : kernels::LaunchPrefillAttention(blas_, q_, KCache(l), VCache(l), b.slot,
                                                                               b.start, M, attn, q_block_,
                                                                               attn_scratch_, attn_, stream_),
                              "prefill attention"));
      } else {
        // Flash-decoding; the last split of each head merges the partials into attn_.
        RETURN_IF_ERROR(Check(kernels::LaunchDecodeAttention(q_, KCache(l), VCache(l), d_slots_, d_pos_, attn, M,
                                                             b.splits, b.split_keys, part_ml_, part_acc_, stream_,
                                                             gemv ? qkv_ : nullptr, qkv_count, attn_, attn_arrivals_),
                              "decode attention"));
      }
    }
    if (!(skip & 4))
      RETURN_IF_ERROR(MatMul({perm_out ? layer.wo_in_order : layer.wo}, attended, x_, dim_, M, /*accumulate=*/true,
                             nullptr, copts_.o_gemv_target_blocks));
    // MLP block: x += down(swiglu(gate_up(rmsnorm(x)))).
    if (!(skip & 8))
      RETURN_IF_ERROR(MatMul(layer.gate_up, RmsNormed(x_, layer.ffn_norm), gate_up_, 2 * ffn_, M, /*accumulate=*/false,
                             gate_up_half));
    Act swiglu;
    swiglu.in.kind = kernels::GemvSource::kSwiGlu;
    swiglu.in.src = gate_up_;
    swiglu.K = ffn_;
    swiglu.scratch = h_;
    swiglu.half_src = gate_up_half;
    if (!(skip & 16))
      RETURN_IF_ERROR(
          MatMul({layer.down}, swiglu, x_, dim_, M, /*accumulate=*/true, nullptr, copts_.down_gemv_target_blocks));
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
// in power-of-two buckets so that few graphs are captured per batch size (exactly as many
// splits as the keys need, with no empty split blocks, lost 0.3-0.7% decode on an H200; at
// least 8 splits changed nothing, at least 16 lost 11%: tests/bench/RESULTS.md, session 28).
void CudaRunner::PickSplits(int max_keys, Batch* b) const {
  // Measured on an H200 at 2048 keys (tests/bench/RESULTS.md, session 4): 64-key splits
  // beat 32 and 128. Up to 512 keys the cluster kernel takes 32-key splits, the split kernel
  // (rope_split_attention 2) 64: one tile of its K/V registers a split (session 27).
  const bool split_kernel = copts_.rope_split_attention == 2 && RopeInAttention(*b);
  b->split_keys = copts_.attn_split_keys > 0 ? copts_.attn_split_keys : max_keys <= 512 && !split_kernel ? 32 : 64;
  // Past the cluster kernel's 1024 keys, decode steps of distinct sequences take the split
  // kernel with RoPE inside (Forward), which walks long splits in 64-key tiles: about
  // attn_long_splits splits of a multiple of 64 keys, as many as the keys need (the split
  // size already moves in steps of 64 x attn_long_splits keys).
  const int target = copts_.attn_long_splits;
  if (target > 0 && copts_.attn_split_keys == 0 && max_keys > kernels::kRopeAttnMaxKeys && RopeInAttention(*b) &&
      copts_.rope_split_attention > 0) {
    b->split_keys = 64 * ((max_keys + 64 * target - 1) / (64 * target));
    b->splits = (max_keys + b->split_keys - 1) / b->split_keys;
    return;
  }
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

// What a step launches after the forward pass (captured with it in its graph).
absl::Status CudaRunner::LaunchTail(const Batch& b, Tail tail, int parity) {
  int32_t* ids = IdsByKernel(tail) ? ids_on_device_ + static_cast<size_t>(parity) * rows_cap_ : nullptr;
  switch (tail) {
    case Tail::kLogits:
      return absl::OkStatus();
    case Tail::kGreedyAdvance:
      return Check(kernels::LaunchGreedyAdvance(logits_, vocab_, d_tokens_, d_pos_, d_hist_, d_step_, stream_),
                   "greedy advance");
    case Tail::kArgmaxAdvance:
      return Check(kernels::LaunchArgmaxAdvance(logits_, vocab_, vocab_, d_tokens_, d_pos_, b.rows, stream_, ids),
                   "argmax advance");
    case Tail::kSampleAdvance:
      return Check(
          kernels::LaunchSampleAdvance(logits_, vocab_, vocab_, d_rows_, d_tokens_, d_pos_, b.rows, stream_, ids),
          "sample advance");
  }
  return absl::InternalError("unknown step tail");
}

// Decode-shaped batches (<= 8 rows) are captured once per (rows, splits, tail, ids parity)
// and replayed.
absl::Status CudaRunner::Run(const Batch& b, Tail tail, int parity) {
  if (!IdsByKernel(tail)) parity = 0;
  if (!copts_.use_graphs || b.rows > kernels::kGemvMaxRows) {
    RETURN_IF_ERROR(Forward(b));
    return LaunchTail(b, tail, parity);
  }
  const auto key = std::make_tuple(b.rows, b.splits, b.split_keys, b.distinct, static_cast<int>(tail), parity);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    Batch cb = b;
    cb.prefill = false;
    cb.graph = true;
    cb.logit_row0 = 0;
    RETURN_IF_ERROR(Check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin capture"));
    absl::Status st = Forward(cb);
    if (st.ok()) st = LaunchTail(cb, tail, parity);
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
  ahead_pending_ = false;
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
      RETURN_IF_ERROR(Run(b, Tail::kLogits));  // short prompts reuse the decode graphs
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
  ahead_pending_ = false;
  const int n = static_cast<int>(slots.size());
  if (n == 0) return absl::OkStatus();
  if (logits.size() < static_cast<size_t>(n) * vocab_)
    return absl::InvalidArgumentError(absl::StrCat("Decode: logits span holds ", logits.size(), " floats, need ",
                                                   static_cast<size_t>(n) * vocab_));
  Batch b;
  RETURN_IF_ERROR(StageStep(slots, positions, tokens, &b));
  RETURN_IF_ERROR(Check(cudaSetDevice(opts_.device), "cudaSetDevice"));
  RETURN_IF_ERROR(UploadIo(n));
  RETURN_IF_ERROR(Run(b, Tail::kLogits));
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(logits.data(), logits_, sizeof(float) * n * vocab_, cudaMemcpyDeviceToHost,
                                        stream_), "copy logits"));
  return Check(cudaStreamSynchronize(stream_), "decode");
}

absl::Status CudaRunner::DecodeGreedy(int slot, int pos, int32_t token, absl::Span<int32_t> out_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ahead_pending_ = false;
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
    RETURN_IF_ERROR(Run(b, Tail::kGreedyAdvance));  // token, position and step advance on the device
  }
  RETURN_IF_ERROR(Check(cudaMemcpyAsync(h_io_ + 3 * R + 1, d_hist_, n * 4, cudaMemcpyDeviceToHost, stream_),
                        "copy tokens"));
  RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream_), "greedy decode"));
  std::copy(h_io_ + 3 * R + 1, h_io_ + 3 * R + 1 + n, out_tokens.begin());
  return absl::OkStatus();
}

}  // namespace llama::cuda_internal
