#include "engine/weights.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/safetensors.h"

namespace llama {
namespace {

// Unpacks AutoGPTQ zeros [num_groups, N/8] (packed along N) to real zero points.
std::vector<uint8_t> UnpackZeros(const std::vector<int32_t>& qzeros, int num_groups, int N,
                                 bool v1) {
  std::vector<uint8_t> zeros(static_cast<size_t>(num_groups) * N);
  const int words = N / 8;
  for (int g = 0; g < num_groups; ++g) {
    for (int n = 0; n < N; ++n) {
      const uint32_t w = static_cast<uint32_t>(qzeros[static_cast<size_t>(g) * words + n / 8]);
      const uint32_t z = (w >> (4 * (n % 8))) & 15u;
      zeros[static_cast<size_t>(g) * N + n] = static_cast<uint8_t>(v1 ? z + 1 : z);
    }
  }
  return zeros;
}

// Rows of packed qweight [K/8, N] reordered so new row k = old row perm[k].
std::vector<uint32_t> PermuteRows(const std::vector<uint32_t>& q, const std::vector<int32_t>& perm,
                                  int K, int N) {
  std::vector<uint32_t> out(q.size(), 0u);
  for (int k = 0; k < K; ++k) {
    const int src = perm[k];
    const uint32_t* srow = q.data() + static_cast<size_t>(src / 8) * N;
    uint32_t* drow = out.data() + static_cast<size_t>(k / 8) * N;
    const int sshift = 4 * (src % 8), dshift = 4 * (k % 8);
    for (int n = 0; n < N; ++n) drow[n] |= ((srow[n] >> sshift) & 15u) << dshift;
  }
  return out;
}

absl::StatusOr<GptqLinear> LoadGptq(const TensorStore& store, const std::string& prefix, int K,
                                    int N, const QuantConfig& qc) {
  GptqLinear L;
  L.K = K;
  L.N = N;
  const int G = qc.group_size == -1 ? K : qc.group_size;
  L.group_size = G;
  if (K % 8 != 0 || N % 8 != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, ": GPTQ 4-bit needs in (", K, ") and out (", N,
                     ") features divisible by 8"));
  }
  const int ng = (K + G - 1) / G;
  auto qw = store.ReadI32(prefix + ".qweight", {K / 8, N});
  if (!qw.ok()) return qw.status();
  auto qz = store.ReadI32(prefix + ".qzeros", {ng, N / 8});
  if (!qz.ok()) return qz.status();
  auto sc = store.ReadFloat(prefix + ".scales", {ng, N});
  if (!sc.ok()) return sc.status();
  std::vector<int32_t> g_idx;
  if (store.Has(prefix + ".g_idx")) {
    auto gi = store.ReadI32(prefix + ".g_idx", {K});
    if (!gi.ok()) return gi.status();
    g_idx = std::move(*gi);
    for (int k = 0; k < K; ++k) {
      if (g_idx[k] < 0 || g_idx[k] >= ng) {
        const TensorView* t = *store.Get(prefix + ".g_idx");
        return absl::InvalidArgumentError(
            absl::StrCat(t->file, ": ", prefix, ".g_idx[", k, "] = ", g_idx[k],
                         " is out of range [0, ", ng, ")"));
      }
    }
  } else {
    g_idx.resize(K);
    for (int k = 0; k < K; ++k) g_idx[k] = k / G;
  }
  L.scales = std::move(*sc);
  L.zeros = UnpackZeros(*qz, ng, N, qc.checkpoint_format == "gptq");
  std::vector<uint32_t> qweight(qw->size());
  std::copy(qw->begin(), qw->end(), qweight.begin());
  qw->clear();
  qw->shrink_to_fit();

  // Group row counts -> group_start; stable counting sort gives the permutation.
  L.group_start.assign(ng + 1, 0);
  for (int k = 0; k < K; ++k) ++L.group_start[g_idx[k] + 1];
  for (int g = 0; g < ng; ++g) L.group_start[g + 1] += L.group_start[g];
  const bool monotone = std::is_sorted(g_idx.begin(), g_idx.end());
  if (monotone) {
    L.qweight = std::move(qweight);
  } else {
    L.perm.resize(K);
    std::vector<int32_t> next(L.group_start.begin(), L.group_start.end() - 1);
    for (int k = 0; k < K; ++k) L.perm[next[g_idx[k]]++] = k;
    L.qweight = PermuteRows(qweight, L.perm, K, N);
  }
  return L;
}

absl::StatusOr<Linear> LoadLinear(const TensorStore& store, const ModelConfig& cfg,
                                  const std::string& prefix, int K, int N) {
  Linear lin;
  lin.K = K;
  lin.N = N;
  if (store.Has(prefix + ".qweight")) {
    if (!cfg.quant.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat(store.source(), ": tensor ", prefix,
                       ".qweight is GPTQ-quantized but config.json has no quantization_config "
                       "and there is no quantize_config.json"));
    }
    auto g = LoadGptq(store, prefix, K, N, *cfg.quant);
    if (!g.ok()) return g.status();
    lin.quantized = true;
    lin.gptq = std::move(*g);
    return lin;
  }
  if (cfg.quant.has_value() && !store.Has(prefix + ".weight")) {
    return absl::NotFoundError(absl::StrCat("tensor ", prefix, ".qweight not found in ",
                                            store.source()));
  }
  auto d = store.ReadFloat(prefix + ".weight", {N, K});
  if (!d.ok()) return d.status();
  lin.dense = std::move(*d);
  return lin;
}

absl::Status LoadLayer(const TensorStore& store, const ModelConfig& c, int i, LayerWeights* lw) {
  const std::string p = absl::StrCat("model.layers.", i, ".");
  const int dim = c.hidden_size, q_out = c.num_attention_heads * c.head_dim,
            kv_out = c.num_key_value_heads * c.head_dim, hid = c.intermediate_size;
  auto an = store.ReadFloat(p + "input_layernorm.weight", {dim});
  if (!an.ok()) return an.status();
  lw->attn_norm = std::move(*an);
  auto fn = store.ReadFloat(p + "post_attention_layernorm.weight", {dim});
  if (!fn.ok()) return fn.status();
  lw->ffn_norm = std::move(*fn);
  struct Proj {
    const char* name;
    int K, N;
    Linear* out;
  };
  const Proj projs[] = {
      {"self_attn.q_proj", dim, q_out, &lw->wq},  {"self_attn.k_proj", dim, kv_out, &lw->wk},
      {"self_attn.v_proj", dim, kv_out, &lw->wv}, {"self_attn.o_proj", q_out, dim, &lw->wo},
      {"mlp.gate_proj", dim, hid, &lw->w_gate},   {"mlp.up_proj", dim, hid, &lw->w_up},
      {"mlp.down_proj", hid, dim, &lw->w_down},
  };
  for (const Proj& pr : projs) {
    auto l = LoadLinear(store, c, p + pr.name, pr.K, pr.N);
    if (!l.ok()) return l.status();
    *pr.out = std::move(*l);
  }
  return absl::OkStatus();
}

// Runs tasks on up to hardware_concurrency threads; returns the first failure (task order).
absl::Status RunParallel(const std::vector<std::function<absl::Status()>>& tasks) {
  std::vector<absl::Status> results(tasks.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t t = next++; t < tasks.size(); t = next++) results[t] = tasks[t]();
  };
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t n = std::min<size_t>(std::min<size_t>(hw, 16), tasks.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& th : threads) th.join();
  for (auto& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

size_t LinearBytes(const Linear& l) {
  const GptqLinear& g = l.gptq;
  return l.dense.size() * sizeof(float) + g.perm.size() * sizeof(int32_t) +
         g.qweight.size() * sizeof(uint32_t) + g.scales.size() * sizeof(float) + g.zeros.size() +
         g.group_start.size() * sizeof(int32_t);
}

}  // namespace

float GptqLinear::At(int k_orig, int n) const {
  int k = k_orig;
  if (!perm.empty()) {
    k = static_cast<int>(std::find(perm.begin(), perm.end(), k_orig) - perm.begin());
  }
  const int g = static_cast<int>(std::upper_bound(group_start.begin(), group_start.end(), k) -
                                 group_start.begin()) - 1;
  const uint32_t q = (qweight[static_cast<size_t>(k / 8) * N + n] >> (4 * (k % 8))) & 15u;
  const size_t gi = static_cast<size_t>(g) * N + n;
  return scales[gi] * (static_cast<float>(q) - static_cast<float>(zeros[gi]));
}

size_t ModelWeights::ByteSize() const {
  size_t b = (embed.size() + final_norm.size() + lm_head.size()) * sizeof(float);
  for (const auto& l : layers) {
    b += (l.attn_norm.size() + l.ffn_norm.size()) * sizeof(float);
    for (const Linear* p : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      b += LinearBytes(*p);
    }
  }
  return b;
}

absl::StatusOr<std::shared_ptr<const ModelWeights>> LoadModelWeights(const std::string& dir) {
  auto cfg = LoadModelConfig(dir);
  if (!cfg.ok()) return cfg.status();
  const std::string base = cfg->quant ? cfg->quant->model_file_base_name : "model";
  auto store = TensorStore::OpenDir(dir, base);
  if (!store.ok()) return store.status();
  auto w = std::make_shared<ModelWeights>();
  w->config = *cfg;
  const ModelConfig& c = w->config;
  w->layers.resize(c.num_hidden_layers);
  std::vector<std::function<absl::Status()>> tasks;
  tasks.push_back([&]() -> absl::Status {
    auto e = store->ReadFloat("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
    if (!e.ok()) return e.status();
    w->embed = std::move(*e);
    return absl::OkStatus();
  });
  tasks.push_back([&]() -> absl::Status {
    auto e = store->ReadFloat("model.norm.weight", {c.hidden_size});
    if (!e.ok()) return e.status();
    w->final_norm = std::move(*e);
    return absl::OkStatus();
  });
  if (!c.tie_word_embeddings) {
    tasks.push_back([&]() -> absl::Status {
      auto e = store->ReadFloat("lm_head.weight", {c.vocab_size, c.hidden_size});
      if (!e.ok()) return e.status();
      w->lm_head = std::move(*e);
      return absl::OkStatus();
    });
  }
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    tasks.push_back([&, i] { return LoadLayer(*store, c, i, &w->layers[i]); });
  }
  if (auto s = RunParallel(tasks); !s.ok()) return s;
  return std::shared_ptr<const ModelWeights>(std::move(w));
}

}  // namespace llama
