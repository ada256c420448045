// The CPU backend: the Llama forward pass in fp32, read top to bottom in Forward().
// It is the reference the CUDA backend is checked against, and the offline demo backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu_ops.h"
#include "engine/runner.h"
#include "engine/thread_pool.h"

namespace llama {
namespace {

// One row of work: token `token` of the sequence in KV slot `slot`, at position `pos`.
struct Row {
  int slot, pos, token;
};

class CpuRunner final : public ModelRunner {
 public:
  CpuRunner(std::shared_ptr<const ModelWeights> w, int max_slots, int max_context, int threads)
      : w_(std::move(w)), c_(w_->config), max_slots_(max_slots), max_context_(max_context),
        pool_(threads), kv_dim_(c_.num_key_value_heads * c_.head_dim) {
    const size_t per_slot = static_cast<size_t>(c_.num_hidden_layers) * max_context_ * kv_dim_;
    key_cache_.assign(per_slot * max_slots_, 0.0f);
    value_cache_.assign(per_slot * max_slots_, 0.0f);
  }

  const ModelConfig& config() const override { return c_; }
  int max_slots() const override { return max_slots_; }
  int max_context() const override { return max_context_; }
  std::string device_name() const override { return "cpu"; }
  size_t memory_bytes() const override {
    return w_->ByteSize() + (key_cache_.size() + value_cache_.size()) * sizeof(float);
  }

  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool all_logits) override {
    std::vector<Row> rows;
    for (size_t i = 0; i < tokens.size(); ++i)
      rows.push_back({slot, start_pos + static_cast<int>(i), tokens[i]});
    return Run(rows, logits, all_logits);
  }

  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    if (slots.size() != positions.size() || slots.size() != tokens.size())
      return absl::InvalidArgumentError("Decode: slots, positions and tokens differ in length");
    std::vector<Row> rows;
    for (size_t i = 0; i < slots.size(); ++i) rows.push_back({slots[i], positions[i], tokens[i]});
    return Run(rows, logits, /*all_logits=*/true);
  }

 private:
  absl::Status Run(const std::vector<Row>& rows, absl::Span<float> logits, bool all_logits) {
    if (rows.empty()) return absl::InvalidArgumentError("no tokens to run");
    for (const Row& r : rows) {
      if (r.slot < 0 || r.slot >= max_slots_)
        return absl::InvalidArgumentError(absl::StrCat("KV slot ", r.slot, " out of range [0, ",
                                                       max_slots_, ")"));
      if (r.pos < 0 || r.pos >= max_context_)
        return absl::InvalidArgumentError(absl::StrCat("position ", r.pos,
                                                       " is beyond the context of ", max_context_));
      if (r.token < 0 || r.token >= c_.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("token id ", r.token,
                                                       " outside the vocabulary of ", c_.vocab_size));
    }
    const size_t want = static_cast<size_t>(all_logits ? rows.size() : 1) * c_.vocab_size;
    if (logits.size() < want)
      return absl::InvalidArgumentError(absl::StrCat("logits buffer holds ", logits.size(),
                                                     " floats, need ", want));
    Forward(rows, logits.data(), all_logits);
    return absl::OkStatus();
  }

  float* KeyAt(int slot, int layer, int pos) {
    return key_cache_.data() + ((static_cast<size_t>(slot) * c_.num_hidden_layers + layer) *
                                    max_context_ + pos) * kv_dim_;
  }
  float* ValueAt(int slot, int layer, int pos) {
    return value_cache_.data() + ((static_cast<size_t>(slot) * c_.num_hidden_layers + layer) *
                                      max_context_ + pos) * kv_dim_;
  }

  // The whole model for M rows. Rows of one sequence must come in position order.
  void Forward(const std::vector<Row>& rows, float* logits, bool all_logits) {
    const int M = static_cast<int>(rows.size());
    const int dim = c_.hidden_size, hd = c_.head_dim, H = c_.num_attention_heads;
    const int q_dim = H * hd, hidden = c_.intermediate_size;
    const int group = H / c_.num_key_value_heads;  // q heads per kv head (GQA)
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

    std::vector<float> x(M * dim), xb(M * dim), q(M * q_dim), k(M * kv_dim_), v(M * kv_dim_);
    std::vector<float> att_out(M * q_dim), h1(M * hidden), h2(M * hidden);

    // Token embedding.
    for (int m = 0; m < M; ++m)
      std::memcpy(&x[m * dim], &w_->embed[static_cast<size_t>(rows[m].token) * dim],
                  dim * sizeof(float));

    for (int l = 0; l < c_.num_hidden_layers; ++l) {
      const LayerWeights& L = w_->layers[l];

      // Attention: RMSNorm, q/k/v projections, RoPE on q and k.
      for (int m = 0; m < M; ++m)
        cpu::RmsNorm(&x[m * dim], L.attn_norm.data(), dim, c_.rms_norm_eps, &xb[m * dim]);
      cpu::MatMul(pool_, L.wq, xb.data(), M, q.data());
      cpu::MatMul(pool_, L.wk, xb.data(), M, k.data());
      cpu::MatMul(pool_, L.wv, xb.data(), M, v.data());
      for (int m = 0; m < M; ++m) {
        for (int h = 0; h < H; ++h) cpu::Rope(&q[m * q_dim + h * hd], hd, rows[m].pos, c_.rope_theta);
        for (int h = 0; h < c_.num_key_value_heads; ++h)
          cpu::Rope(&k[m * kv_dim_ + h * hd], hd, rows[m].pos, c_.rope_theta);
        // Store this position's key and value in the sequence's cache.
        std::memcpy(KeyAt(rows[m].slot, l, rows[m].pos), &k[m * kv_dim_], kv_dim_ * sizeof(float));
        std::memcpy(ValueAt(rows[m].slot, l, rows[m].pos), &v[m * kv_dim_], kv_dim_ * sizeof(float));
      }

      // Causal grouped-query attention over the cache: row m sees positions 0..pos.
      pool_.ParallelFor(M * H, [&](int begin, int end) {
        std::vector<float> sc(max_context_);
        for (int task = begin; task < end; ++task) {
          const int m = task / H, h = task % H, kvh = h / group;
          const Row& r = rows[m];
          const float* qh = &q[m * q_dim + h * hd];
          for (int t = 0; t <= r.pos; ++t) {
            const float* kt = KeyAt(r.slot, l, t) + kvh * hd;
            float dot = 0.0f;
            for (int i = 0; i < hd; ++i) dot += qh[i] * kt[i];
            sc[t] = dot * scale;
          }
          cpu::Softmax(sc.data(), r.pos + 1);
          float* out = &att_out[m * q_dim + h * hd];
          std::fill_n(out, hd, 0.0f);
          for (int t = 0; t <= r.pos; ++t) {
            const float* vt = ValueAt(r.slot, l, t) + kvh * hd;
            for (int i = 0; i < hd; ++i) out[i] += sc[t] * vt[i];
          }
        }
      });

      // Output projection and residual.
      cpu::MatMul(pool_, L.wo, att_out.data(), M, xb.data());
      for (int i = 0; i < M * dim; ++i) x[i] += xb[i];

      // MLP: RMSNorm, SwiGLU(gate, up), down projection, residual.
      for (int m = 0; m < M; ++m)
        cpu::RmsNorm(&x[m * dim], L.ffn_norm.data(), dim, c_.rms_norm_eps, &xb[m * dim]);
      cpu::MatMul(pool_, L.w_gate, xb.data(), M, h1.data());
      cpu::MatMul(pool_, L.w_up, xb.data(), M, h2.data());
      cpu::SwiGlu(h1.data(), h2.data(), M * hidden, h1.data());
      cpu::MatMul(pool_, L.w_down, h1.data(), M, xb.data());
      for (int i = 0; i < M * dim; ++i) x[i] += xb[i];
    }

    // Final norm and classifier (only the last row unless all logits are wanted).
    const int first = all_logits ? 0 : M - 1;
    const std::vector<float>& out_w = w_->output_weight();
    for (int m = first; m < M; ++m) {
      cpu::RmsNorm(&x[m * dim], w_->final_norm.data(), dim, c_.rms_norm_eps, &xb[m * dim]);
      float* lg = logits + static_cast<size_t>(m - first) * c_.vocab_size;
      const float* xn = &xb[m * dim];
      pool_.ParallelFor(c_.vocab_size, [&](int v0, int v1) {
        for (int vi = v0; vi < v1; ++vi) {
          const float* wr = out_w.data() + static_cast<size_t>(vi) * dim;
          float sum = 0.0f;
          for (int i = 0; i < dim; ++i) sum += xn[i] * wr[i];
          lg[vi] = sum;
        }
      });
    }
  }

  std::shared_ptr<const ModelWeights> w_;
  const ModelConfig& c_;
  const int max_slots_, max_context_;
  ThreadPool pool_;
  const int kv_dim_;
  std::vector<float> key_cache_, value_cache_;  // [slot][layer][pos][kv_dim]
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCpuRunner(
    std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options) {
  if (!weights) return absl::InvalidArgumentError("CreateCpuRunner: no weights");
  const ModelConfig& c = weights->config;
  int context = options.max_context > 0 ? options.max_context : c.max_position_embeddings;
  if (options.max_slots <= 0) return absl::InvalidArgumentError("max_slots must be positive");
  const double kv_bytes = 2.0 * options.max_slots * c.num_hidden_layers * context *
                          c.num_key_value_heads * c.head_dim * sizeof(float);
  if (kv_bytes > 64e9)
    return absl::ResourceExhaustedError(absl::StrCat(
        "CPU KV cache would need ", kv_bytes / 1e9, " GB (", options.max_slots, " slots x ",
        context, " positions): lower max_slots or max_context"));
  return std::unique_ptr<ModelRunner>(
      new CpuRunner(std::move(weights), options.max_slots, context, options.threads));
}

}  // namespace llama
