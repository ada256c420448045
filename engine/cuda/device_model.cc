#include "engine/cuda/device_model.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/act_order_fold.h"

namespace llama::cuda {
namespace {

std::vector<__half> ToHalf(const std::vector<float>& v) {
  std::vector<__half> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2half(v[i]);
  return out;
}

// inv[perm[k]] = k; empty when perm is not a permutation of 0..size-1.
std::vector<int32_t> InversePermutation(const std::vector<int32_t>& perm) {
  std::vector<int32_t> inv(perm.size(), -1);
  for (size_t k = 0; k < perm.size(); ++k) {
    const int32_t p = perm[k];
    if (p < 0 || static_cast<size_t>(p) >= perm.size() || inv[p] >= 0) return {};
    inv[p] = static_cast<int32_t>(k);
  }
  return inv;
}

bool IsIdentity(const std::vector<int32_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int32_t>(i)) return false;
  return true;
}

// Linears that can share one launch: all GPTQ with the same K and number of groups (each
// keeps its own act-order permutation as a segment), or all dense with the same K.
bool CanFuse(const std::vector<const Linear*>& parts) {
  const Linear& a = *parts[0];
  if (parts.size() > static_cast<size_t>(kernels::kMaxSegments)) return false;
  for (const Linear* p : parts) {
    if (p->K != a.K || p->quantized != a.quantized) return false;
    if (a.quantized && p->gptq.num_groups() != a.gptq.num_groups()) return false;
  }
  return true;
}

// Concatenates `parts` along N into one projection starting at column `col`.
absl::StatusOr<DeviceProjection> UploadFused(const std::vector<const Linear*>& parts, int col,
                                             const std::string& name, DeviceArena& arena, DeviceModel& model,
                                             const UploadOptions& opt) {
  DeviceProjection d;
  d.K = parts[0]->K;
  d.col = col;
  d.quantized = parts[0]->quantized;
  for (const Linear* p : parts) d.N += p->N;
  const int K = d.K, N = d.N;
  if (!d.quantized) {
    if (K % 8 != 0) return absl::UnimplementedError(absl::StrCat(name, ": dense K=", K, " is not a multiple of 8"));
    std::vector<__half> w;
    w.reserve(static_cast<size_t>(N) * K);
    for (const Linear* p : parts) {
      if (p->dense.size() != static_cast<size_t>(p->N) * K)
        return absl::InvalidArgumentError(absl::StrCat(name, ": dense weight has ", p->dense.size(), " values"));
      for (float v : p->dense) w.push_back(__float2half(v));
    }
    auto ptr = arena.UploadVector(w, name);
    if (!ptr.ok()) return ptr.status();
    d.dense = *ptr;
    model.weight_bytes += w.size() * sizeof(__half);
    return d;
  }
  const int groups = parts[0]->gptq.num_groups();
  if (K % 8 != 0 || N % 4 != 0)
    return absl::UnimplementedError(absl::StrCat(name, ": GPTQ shape K=", K, " N=", N,
                                                 " needs K % 8 == 0 and N % 4 == 0"));
  std::vector<uint32_t> q(static_cast<size_t>(K / 8) * N);
  std::vector<__half> scales(static_cast<size_t>(groups) * N);
  std::vector<uint8_t> zeros(static_cast<size_t>(groups) * N);
  d.gptq.K = K;
  d.gptq.N = N;
  d.gptq.num_segments = static_cast<int>(parts.size());
  d.gptq.num_groups = groups;
  d.gptq.min_group_rows = K;
  int c0 = 0;
  for (size_t pi = 0; pi < parts.size(); ++pi) {
    const GptqLinear& g = parts[pi]->gptq;
    const int n = parts[pi]->N;
    if (n % 4 != 0) return absl::UnimplementedError(absl::StrCat(name, ": part ", pi, " N=", n, " is not a multiple of 4"));
    if (g.group_start.empty() || g.group_start.front() != 0 || g.group_start.back() != K)
      return absl::InvalidArgumentError(absl::StrCat(name, ": group_start does not cover K=", K));
    if (g.qweight.size() != static_cast<size_t>(K / 8) * n || g.scales.size() != static_cast<size_t>(groups) * n ||
        g.zeros.size() != static_cast<size_t>(groups) * n)
      return absl::InvalidArgumentError(absl::StrCat(name, ": GPTQ tensor sizes do not match K=", K, " N=", n));
    std::vector<uint16_t> word_group(K / 8);
    for (int gi = 0; gi < groups; ++gi) {
      const int b = g.group_start[gi], e = g.group_start[gi + 1];
      if (b % 8 != 0)
        return absl::UnimplementedError(absl::StrCat(name, ": group ", gi, " starts at row ", b,
                                                     ", not a multiple of 8 (one group per packed word needed)"));
      for (int k = b; k < e; k += 8) word_group[k / 8] = static_cast<uint16_t>(gi);
      d.gptq.min_group_rows = std::min(d.gptq.min_group_rows, e - b);
    }
    for (int w = 0; w < K / 8; ++w)
      std::memcpy(&q[static_cast<size_t>(w) * N + c0], &g.qweight[static_cast<size_t>(w) * n], n * sizeof(uint32_t));
    for (int gi = 0; gi < groups; ++gi)
      for (int j = 0; j < n; ++j) {
        scales[static_cast<size_t>(gi) * N + c0 + j] = __float2half(g.scales[static_cast<size_t>(gi) * n + j]);
        zeros[static_cast<size_t>(gi) * N + c0 + j] = g.zeros[static_cast<size_t>(gi) * n + j];
      }
    kernels::GptqSegment& seg = d.gptq.seg[pi];
    seg.n_begin = c0;
    seg.n_end = c0 + n;
    auto wp = arena.UploadVector(word_group, absl::StrCat(name, ".word_group[", pi, "]"));
    if (!wp.ok()) return wp.status();
    seg.word_group = static_cast<const uint16_t*>(*wp);
    model.weight_bytes += word_group.size() * 2;
    if (!g.perm.empty() && !IsIdentity(g.perm)) {
      if (g.perm.size() != static_cast<size_t>(K))
        return absl::InvalidArgumentError(absl::StrCat(name, ": perm has ", g.perm.size(), " entries, K=", K));
      // Parts quantized from the same input usually share their act-order permutation
      // (q|k|v, gate|up): one device copy, so that prefill runs them as one GEMM.
      for (size_t pj = 0; pj < pi && !seg.perm; ++pj)
        if (parts[pj]->gptq.perm == g.perm) seg.perm = d.gptq.seg[pj].perm;
      if (!seg.perm) {
        auto pp = arena.UploadVector(g.perm, absl::StrCat(name, ".perm[", pi, "]"));
        if (!pp.ok()) return pp.status();
        seg.perm = static_cast<const int32_t*>(*pp);
        model.weight_bytes += g.perm.size() * 4;
      }
      model.max_permuted_k = std::max(model.max_permuted_k, K);
    }
    c0 += n;
  }
  // Uniform groups (group g = rows [g G, (g + 1) G) in every part): what the warp GEMV needs.
  const int G = parts[0]->gptq.group_start.size() > 1 ? parts[0]->gptq.group_start[1] : 0;
  bool uniform = G > 0 && K % G == 0;
  for (size_t pi = 0; pi < parts.size() && uniform; ++pi) {
    const std::vector<int32_t>& gs = parts[pi]->gptq.group_start;
    for (size_t gi = 0; gi < gs.size() && uniform; ++gi) uniform = gs[gi] == static_cast<int>(gi) * G;
  }
  d.gptq.group_rows = uniform ? G : 0;
  // Tensor-core layout when the shape allows (segments and groups on 16-row/column tiles).
  bool mma = opt.mma_layout && kernels::GptqMmaLayoutFits(K, N);
  for (size_t pi = 0; pi < parts.size() && mma; ++pi) {
    mma = d.gptq.seg[pi].n_begin % 16 == 0;
    for (int gs : parts[pi]->gptq.group_start) mma = mma && gs % 16 == 0;
  }
  if (mma) {
    std::vector<uint32_t> tiles(q.size());
    kernels::RepackGptqForMma(q.data(), K, N, tiles.data());
    q.swap(tiles);
  }
  auto qp = arena.UploadVector(q, name + (mma ? ".qtiles" : ".qweight"));
  if (!qp.ok()) return qp.status();
  auto sp = arena.UploadVector(scales, name + ".scales");
  if (!sp.ok()) return sp.status();
  auto zp = arena.UploadVector(zeros, name + ".zeros");
  if (!zp.ok()) return zp.status();
  (mma ? d.gptq.qtiles : d.gptq.qweight) = static_cast<const uint32_t*>(*qp);
  d.gptq.scales = static_cast<const __half*>(*sp);
  d.gptq.zeros = static_cast<const uint8_t*>(*zp);
  model.weight_bytes += q.size() * 4 + scales.size() * 2 + zeros.size();
  d.gptq.uniform_zero = kernels::UniformGptqZero(zeros.data(), zeros.size());
  // What the warp GEMV reads (uniform groups of 32/64/128 rows, tensor-core layout): a 4-bit
  // copy of the zero points as well, half the bytes per decode step (kernels::PackGptqZeros4);
  // not where the zero points are all equal and no kernel reads them (opt.zeros4_if_uniform).
  const bool zeros_read = d.gptq.uniform_zero < 0 || opt.zeros4_if_uniform;
  if (mma && zeros_read && (d.gptq.group_rows == 32 || d.gptq.group_rows == 64 || d.gptq.group_rows == 128)) {
    std::vector<uint8_t> zeros4(zeros.size() / 2);
    if (kernels::PackGptqZeros4(zeros.data(), zeros.size(), zeros4.data(), &d.gptq.zeros4_offset)) {
      auto z4 = arena.UploadVector(zeros4, name + ".zeros4");
      if (!z4.ok()) return z4.status();
      d.gptq.zeros4 = static_cast<const uint8_t*>(*z4);
      model.weight_bytes += zeros4.size();
    }
  }
  model.max_dequant_elems = std::max(model.max_dequant_elems, static_cast<size_t>(K) * N);
  return d;
}

// Uploads `parts` (outputs side by side): one fused projection when possible, else one each.
absl::StatusOr<std::vector<DeviceProjection>> UploadGroup(const std::vector<const Linear*>& parts,
                                                          const std::string& name, DeviceArena& arena,
                                                          DeviceModel& model, const UploadOptions& opt,
                                                          bool* fused) {
  std::vector<DeviceProjection> out;
  *fused = parts.size() > 1 && CanFuse(parts);
  if (*fused) {
    auto p = UploadFused(parts, 0, name, arena, model, opt);
    if (!p.ok()) return p.status();
    out.push_back(*p);
    return out;
  }
  int col = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto p = UploadFused({parts[i]}, col, absl::StrCat(name, "[", i, "]"), arena, model, opt);
    if (!p.ok()) return p.status();
    out.push_back(*p);
    col += parts[i]->N;
  }
  return out;
}

}  // namespace

absl::StatusOr<DeviceModel> UploadModel(const ModelWeights& w, DeviceArena& arena, const UploadOptions& opt) {
  const ModelConfig& c = w.config;
  const int hd = c.head_dim;
  if (hd % 8 != 0 || hd > 256)
    return absl::UnimplementedError(absl::StrCat("CUDA backend: head_dim ", hd, " must be a multiple of 8, <= 256"));
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    return absl::InvalidArgumentError("CUDA backend: num_attention_heads must be a multiple of num_key_value_heads");
  if (c.hidden_size % 8 != 0 || c.intermediate_size % 8 != 0)
    return absl::UnimplementedError("CUDA backend: hidden_size and intermediate_size must be multiples of 8");
  DeviceModel m;
  auto emb = arena.UploadVector(ToHalf(w.embed), "embed_tokens");
  if (!emb.ok()) return emb.status();
  m.embed = static_cast<const __half*>(*emb);
  m.weight_bytes += w.embed.size() * 2;
  if (w.lm_head.empty()) {
    m.lm_head = m.embed;
  } else {
    auto lm = arena.UploadVector(ToHalf(w.lm_head), "lm_head");
    if (!lm.ok()) return lm.status();
    m.lm_head = static_cast<const __half*>(*lm);
    m.weight_bytes += w.lm_head.size() * 2;
  }
  auto fn = arena.UploadVector(w.final_norm, "norm");
  if (!fn.ok()) return fn.status();
  m.final_norm = static_cast<const float*>(*fn);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::string pre = absl::StrCat("layers.", l, ".");
    DeviceLayer d;
    auto an = arena.UploadVector(lw.attn_norm, pre + "input_layernorm");
    if (!an.ok()) return an.status();
    auto fnn = arena.UploadVector(lw.ffn_norm, pre + "post_attention_layernorm");
    if (!fnn.ok()) return fnn.status();
    d.attn_norm = static_cast<const float*>(*an);
    d.ffn_norm = static_cast<const float*>(*fnn);
    bool fused = false;
    auto qkv = UploadGroup({&lw.wq, &lw.wk, &lw.wv}, pre + "self_attn.qkv_proj", arena, m, opt, &fused);
    if (!qkv.ok()) return qkv.status();
    d.qkv = std::move(*qkv);
    m.fused_qkv_layers += fused;
    auto wo = UploadFused({&lw.wo}, 0, pre + "self_attn.o_proj", arena, m, opt);
    if (!wo.ok()) return wo.status();
    d.wo = *wo;
    // The MLP, with down's permutation folded into gate|up's columns when asked and possible
    // (a copy of the three: the host weights stay as loaded).
    const Linear *gate = &lw.w_gate, *up = &lw.w_up, *down_in = &lw.w_down;
    Linear fgate, fup, fdown;
    if (opt.fold_down_permutation && lw.w_down.quantized && !lw.w_down.gptq.perm.empty()) {
      fgate = lw.w_gate;
      fup = lw.w_up;
      fdown = lw.w_down;
      if (FoldDownPermutation(fgate, fup, fdown)) {
        gate = &fgate;
        up = &fup;
        down_in = &fdown;
      }
    }
    auto gu = UploadGroup({gate, up}, pre + "mlp.gate_up_proj", arena, m, opt, &fused);
    if (!gu.ok()) return gu.status();
    d.gate_up = std::move(*gu);
    m.fused_gate_up_layers += fused;
    auto down = UploadFused({down_in}, 0, pre + "mlp.down_proj", arena, m, opt);
    if (!down.ok()) return down.status();
    d.down = *down;
    // Act-order layers run their GEMVs in one warp-GEMV kernel (GptqMatrix::act_order_layer).
    std::vector<DeviceProjection*> all = {&d.wo, &d.down};
    for (auto& p : d.qkv) all.push_back(&p);
    for (auto& p : d.gate_up) all.push_back(&p);
    bool act_order = false;
    for (const DeviceProjection* p : all)
      for (int s = 0; s < p->gptq.num_segments; ++s) act_order |= p->quantized && p->gptq.seg[s].perm != nullptr;
    for (DeviceProjection* p : all) p->gptq.act_order_layer = act_order;
    if (d.wo.quantized && d.wo.gptq.num_segments == 1 && d.wo.gptq.seg[0].perm != nullptr) {
      auto inv = InversePermutation(lw.wo.gptq.perm);
      if (!inv.empty()) {
        auto ip = arena.UploadVector(inv, pre + "self_attn.o_proj.inverse_perm");
        if (!ip.ok()) return ip.status();
        d.attn_out_perm = static_cast<const int32_t*>(*ip);
        m.weight_bytes += inv.size() * 4;
        d.wo_in_order = d.wo;
        d.wo_in_order.gptq.seg[0].perm = nullptr;
      }
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

}  // namespace llama::cuda
