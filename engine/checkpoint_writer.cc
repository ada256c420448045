#include "engine/checkpoint_writer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/checkpoint_writer_spm.h"
#include "engine/safetensors.h"
#include "nlohmann/json.hpp"

namespace llama {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ------------------------------------------------------------------ randomness
uint64_t Mix(uint64_t z) {  // splitmix64 finalizer
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Rng {
  uint64_t s;
  uint64_t Next() { return s = Mix(s); }
  float Uniform() {  // [-1, 1)
    return static_cast<float>(static_cast<int64_t>(Next() >> 40) - (1ll << 23)) *
           (1.0f / (1 << 23));
  }
};

uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, stable across platforms
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return Mix(h ^ Mix(seed));
}

// Runs fn(begin, end, rng) over [0, count) in fixed-size chunks; each chunk's RNG depends
// only on (tensor_seed, chunk index), so output is independent of the thread count.
void ParallelChunks(size_t count, uint64_t tensor_seed, int threads,
                    const std::function<void(size_t, size_t, Rng&)>& fn) {
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = (count + kChunk - 1) / kChunk;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t c = next++; c < chunks; c = next++) {
      Rng rng{Mix(tensor_seed + 0x632be59bd9b4e019ull * (c + 1))};
      fn(c * kChunk, std::min(count, (c + 1) * kChunk), rng);
    }
  };
  const int n = static_cast<int>(std::min<size_t>(std::max(1, threads), chunks));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

// ------------------------------------------------------------------ tensor plans
using Filler = std::function<void(uint8_t* out, uint64_t seed, int threads)>;

struct Planned {
  TensorSpec spec;
  Filler fill;
};

Filler F16Uniform(size_t n, float center, float amplitude) {
  return [=](uint8_t* out, uint64_t seed, int threads) {
    ParallelChunks(n, seed, threads, [&](size_t b, size_t e, Rng& rng) {
      for (size_t i = b; i < e; ++i) {
        const uint16_t h = FloatToHalf(center + amplitude * rng.Uniform());
        std::memcpy(out + 2 * i, &h, 2);
      }
    });
  };
}

// Nibbles 8 + a - b (a, b uniform 0..7): symmetric around the zero point 8, in [1, 15].
Filler QWeight(size_t words) {
  return [=](uint8_t* out, uint64_t seed, int threads) {
    ParallelChunks(words, seed, threads, [&](size_t b, size_t e, Rng& rng) {
      for (size_t i = b; i < e; ++i) {
        const uint64_t r = rng.Next();
        uint32_t w = 0;
        for (int j = 0; j < 8; ++j) {
          const uint32_t a = (r >> (6 * j)) & 7, c = (r >> (6 * j + 3)) & 7;
          w |= (8 + a - c) << (4 * j);
        }
        std::memcpy(out + 4 * i, &w, 4);
      }
    });
  };
}

Filler ConstI32(size_t n, uint32_t value) {
  return [=](uint8_t* out, uint64_t, int) {
    for (size_t i = 0; i < n; ++i) std::memcpy(out + 4 * i, &value, 4);
  };
}

// g_idx: k / G, or AutoGPTQ act-order style: a random permutation perm, g_idx[perm[i]] = i / G.
// The permutation is drawn per layer input (`input`), not per tensor: act-order sorts rows by
// the input's Hessian diagonal, so projections of one input (q|k|v, gate|up) share it in real
// checkpoints too.
Filler GIdx(int K, int G, bool desc_act, const std::string& input) {
  return [=](uint8_t* out, uint64_t, int) {
    std::vector<int32_t> g(K);
    if (desc_act) {
      std::vector<int32_t> perm(K);
      std::iota(perm.begin(), perm.end(), 0);
      Rng rng{TensorSeed(0x9e3779b97f4a7c15ull, input)};
      for (int i = K - 1; i > 0; --i) std::swap(perm[i], perm[rng.Next() % (i + 1)]);
      for (int i = 0; i < K; ++i) g[perm[i]] = i / G;
    } else {
      for (int k = 0; k < K; ++k) g[k] = k / G;
    }
    std::memcpy(out, g.data(), 4 * static_cast<size_t>(K));
  };
}

void PlanGptq(const std::string& prefix, const std::string& input, int K, int N, const CheckpointLayout& layout,
              std::vector<Planned>* plan) {
  const int G = layout.group_size;
  const int ng = (K + G - 1) / G;
  constexpr float kScale = 0.02f / 7.0f;
  plan->push_back({{prefix + ".qweight", DType::kI32, {K / 8, N}},
                   QWeight(static_cast<size_t>(K / 8) * N)});
  plan->push_back({{prefix + ".qzeros", DType::kI32, {ng, N / 8}},
                   ConstI32(static_cast<size_t>(ng) * (N / 8), 0x77777777u)});
  plan->push_back({{prefix + ".scales", DType::kF16, {ng, N}},
                   F16Uniform(static_cast<size_t>(ng) * N, kScale, 0.25f * kScale)});
  plan->push_back({{prefix + ".g_idx", DType::kI32, {K}}, GIdx(K, G, layout.desc_act, input)});
}

std::vector<Planned> PlanTensors(const CheckpointShape& s, const CheckpointLayout& layout) {
  std::vector<Planned> plan;
  const int hd = s.hidden / s.heads;
  const size_t embed_n = static_cast<size_t>(s.vocab) * s.hidden;
  plan.push_back({{"model.embed_tokens.weight", DType::kF16, {s.vocab, s.hidden}},
                  F16Uniform(embed_n, 0.0f, 0.05f)});
  plan.push_back({{"model.norm.weight", DType::kF16, {s.hidden}},
                  F16Uniform(s.hidden, 1.0f, 0.05f)});
  if (!s.tie_embeddings) {
    plan.push_back({{"lm_head.weight", DType::kF16, {s.vocab, s.hidden}},
                    F16Uniform(embed_n, 0.0f, 0.03f)});
  }
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    plan.push_back({{p + "input_layernorm.weight", DType::kF16, {s.hidden}},
                    F16Uniform(s.hidden, 1.0f, 0.05f)});
    plan.push_back({{p + "post_attention_layernorm.weight", DType::kF16, {s.hidden}},
                    F16Uniform(s.hidden, 1.0f, 0.05f)});
    PlanGptq(p + "self_attn.q_proj", p + "attn_in", s.hidden, s.heads * hd, layout, &plan);
    PlanGptq(p + "self_attn.k_proj", p + "attn_in", s.hidden, s.kv_heads * hd, layout, &plan);
    PlanGptq(p + "self_attn.v_proj", p + "attn_in", s.hidden, s.kv_heads * hd, layout, &plan);
    PlanGptq(p + "self_attn.o_proj", p + "o_in", s.heads * hd, s.hidden, layout, &plan);
    PlanGptq(p + "mlp.gate_proj", p + "mlp_in", s.hidden, s.intermediate, layout, &plan);
    PlanGptq(p + "mlp.up_proj", p + "mlp_in", s.hidden, s.intermediate, layout, &plan);
    PlanGptq(p + "mlp.down_proj", p + "down_in", s.intermediate, s.hidden, layout, &plan);
  }
  std::sort(plan.begin(), plan.end(),
            [](const Planned& a, const Planned& b) { return a.spec.name < b.spec.name; });
  return plan;
}

absl::Status ValidateShape(const CheckpointShape& s) {
  auto bad = [](const std::string& m) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint shape: ", m));
  };
  if (s.hidden <= 0 || s.intermediate <= 0 || s.layers <= 0 || s.heads <= 0 ||
      s.kv_heads <= 0 || s.vocab <= 0 || s.context <= 0) {
    return bad("every dimension must be positive");
  }
  if (s.hidden % s.heads != 0) return bad(absl::StrCat("hidden ", s.hidden, " % heads ", s.heads));
  if (s.heads % s.kv_heads != 0) {
    return bad(absl::StrCat("kv_heads ", s.kv_heads, " must divide heads ", s.heads));
  }
  if ((s.hidden / s.heads) % 2 != 0) return bad("head_dim must be even");
  if (s.hidden % 8 != 0 || s.intermediate % 8 != 0 || (s.kv_heads * (s.hidden / s.heads)) % 8) {
    return bad("hidden, intermediate and kv_heads*head_dim must be multiples of 8 (GPTQ packing)");
  }
  return absl::OkStatus();
}

absl::Status WriteJson(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

json QuantJson(const CheckpointLayout& l) {
  return {{"bits", 4},
          {"group_size", l.group_size},
          {"damp_percent", 0.01},
          {"desc_act", l.desc_act},
          {"static_groups", false},
          {"sym", true},
          {"true_sequential", true},
          {"model_name_or_path", nullptr},
          {"model_file_base_name", "model"}};
}

absl::Status WriteJsonFiles(const fs::path& dir, const CheckpointShape& s,
                            const CheckpointLayout& l) {
  json q = QuantJson(l);
  json qc = q;
  qc["quant_method"] = "gptq";
  const json config = {{"architectures", {"LlamaForCausalLM"}},
                       {"model_type", "llama"},
                       {"hidden_size", s.hidden},
                       {"intermediate_size", s.intermediate},
                       {"num_hidden_layers", s.layers},
                       {"num_attention_heads", s.heads},
                       {"num_key_value_heads", s.kv_heads},
                       {"vocab_size", s.vocab},
                       {"max_position_embeddings", s.context},
                       {"rms_norm_eps", 1e-5},
                       {"rope_theta", 10000.0},
                       {"rope_scaling", nullptr},
                       {"hidden_act", "silu"},
                       {"attention_bias", false},
                       {"tie_word_embeddings", s.tie_embeddings},
                       {"bos_token_id", 1},
                       {"eos_token_id", 2},
                       {"pad_token_id", 0},
                       {"initializer_range", 0.02},
                       {"pretraining_tp", 1},
                       {"use_cache", true},
                       {"torch_dtype", "float16"},
                       {"quantization_config", qc}};
  const json gen = {{"bos_token_id", 1},   {"eos_token_id", 2}, {"pad_token_id", 0},
                    {"do_sample", true},   {"temperature", 0.6}, {"top_p", 0.9},
                    {"max_length", s.context}};
  const json tok = {{"add_bos_token", true},
                    {"add_eos_token", false},
                    {"bos_token", "<s>"},
                    {"eos_token", "</s>"},
                    {"unk_token", "<unk>"},
                    {"pad_token", nullptr},
                    {"clean_up_tokenization_spaces", false},
                    {"legacy", false},
                    {"model_max_length", s.context},
                    {"sp_model_kwargs", json::object()},
                    {"tokenizer_class", "LlamaTokenizer"}};
  const json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  for (const auto& [name, j] : {std::pair<const char*, const json*>{"config.json", &config},
                                {"quantize_config.json", &q},
                                {"generation_config.json", &gen},
                                {"tokenizer_config.json", &tok},
                                {"special_tokens_map.json", &special}}) {
    if (auto st = WriteJson(dir / name, *j); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status WriteTokenizer(const fs::path& dir, const CheckpointOptions& o) {
  const fs::path dst = dir / "tokenizer.model";
  std::string err;
  if (o.tokenizer_path.empty()) {
    if (auto s = TrainDemoTokenizer(dst.string(), o.shape.vocab); !s.ok()) return s;
    const int pieces = spm::PieceCount(dst.string(), &err);
    if (pieces != o.shape.vocab) {
      return absl::InternalError(absl::StrCat("trained tokenizer ", dst.string(), " has ", pieces,
                                              " pieces, wanted ", o.shape.vocab, " ", err));
    }
    return absl::OkStatus();
  }
  const int pieces = spm::PieceCount(o.tokenizer_path, &err);
  if (pieces < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer ", o.tokenizer_path, ": cannot load: ", err));
  }
  if (pieces != o.shape.vocab) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer ", o.tokenizer_path, " has ",
                                                   pieces, " pieces but vocab is ",
                                                   o.shape.vocab));
  }
  std::error_code ec;
  fs::copy_file(o.tokenizer_path, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return absl::DataLossError(absl::StrCat("copy ", o.tokenizer_path, " -> ", dst.string(),
                                            ": ", ec.message()));
  }
  // The source may be read-only (fixtures); keep the copy writable like the other files.
  fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add, ec);
  return absl::OkStatus();
}

absl::Status WriteShard(const std::string& path, const std::vector<Planned>& plan, size_t begin,
                        size_t end, uint64_t seed, int threads) {
  std::vector<TensorSpec> specs;
  for (size_t i = begin; i < end; ++i) specs.push_back(plan[i].spec);
  auto w = SafetensorsWriter::Open(path, std::move(specs));
  if (!w.ok()) return w.status();
  std::vector<uint8_t> buf;
  for (size_t i = begin; i < end; ++i) {
    buf.resize(plan[i].spec.nbytes());
    plan[i].fill(buf.data(), TensorSeed(seed, plan[i].spec.name), threads);
    if (auto s = (*w)->Write(buf); !s.ok()) return s;
  }
  return (*w)->Close();
}

}  // namespace

CheckpointShape TinyShape() { return {128, 384, 4, 8, 4, 512, 512, true}; }
CheckpointShape Llama2_7bShape() { return {4096, 11008, 32, 32, 32, 32000, 4096, false}; }

absl::StatusOr<CheckpointShape> ShapeByPreset(const std::string& preset) {
  if (preset == "tiny") return TinyShape();
  if (preset == "llama2-7b") return Llama2_7bShape();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preset \"", preset, "\" (known: tiny, llama2-7b)"));
}

const std::vector<std::string>& AllLayoutNames() {
  static const std::vector<std::string> names = {
      "main", "gptq-4bit-32g-actorder_True", "gptq-4bit-64g-actorder_True",
      "gptq-4bit-128g-actorder_True"};
  return names;
}

absl::StatusOr<CheckpointLayout> LayoutByName(const std::string& name) {
  if (name == "main") return CheckpointLayout{name, 128, false};
  if (name == "gptq-4bit-32g-actorder_True") return CheckpointLayout{name, 32, true};
  if (name == "gptq-4bit-64g-actorder_True") return CheckpointLayout{name, 64, true};
  if (name == "gptq-4bit-128g-actorder_True") return CheckpointLayout{name, 128, true};
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown layout \"", name,
      "\" (known: main, gptq-4bit-{32,64,128}g-actorder_True)"));
}

absl::Status TrainDemoTokenizer(const std::string& path, int vocab) {
  std::string model, err;
  if (!spm::TrainDemoBpe(vocab, &model, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training a ", vocab, "-piece demo tokenizer failed (the embedded text supports "
        "roughly 400 to 2000 pieces, 256 byte-fallback pieces included; pass a "
        "tokenizer.model for other vocab sizes): ", err));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(model.data(), static_cast<std::streamsize>(model.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status WriteCheckpoint(const std::string& dir, const CheckpointOptions& o) {
  if (auto s = ValidateShape(o.shape); !s.ok()) return s;
  if (o.layout.group_size <= 0 || o.layout.group_size % 8 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout ", o.layout.branch, ": group_size must be a positive multiple of 8"));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const int threads = o.threads > 0 ? o.threads
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (auto s = WriteTokenizer(dir, o); !s.ok()) return s;
  if (auto s = WriteJsonFiles(dir, o.shape, o.layout); !s.ok()) return s;

  const std::vector<Planned> plan = PlanTensors(o.shape, o.layout);
  if (o.shards < 1 || static_cast<size_t>(o.shards) > plan.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards must be in [1, ", plan.size(), "], got ", o.shards));
  }
  if (o.shards == 1) {
    return WriteShard(dir + "/model.safetensors", plan, 0, plan.size(), o.seed, threads);
  }
  // Contiguous shards of roughly equal bytes, each non-empty.
  uint64_t total = 0;
  for (const auto& p : plan) total += p.spec.nbytes();
  std::vector<size_t> bounds = {0};
  uint64_t acc = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    acc += plan[i].spec.nbytes();
    const size_t shard = bounds.size();  // 1-based index of the shard being filled
    const size_t left_tensors = plan.size() - (i + 1), left_shards = o.shards - shard;
    if (shard < static_cast<size_t>(o.shards) &&
        (acc >= total * shard / o.shards || left_tensors == left_shards)) {
      bounds.push_back(i + 1);
    }
  }
  bounds.push_back(plan.size());
  json weight_map = json::object();
  for (int s = 0; s < o.shards; ++s) {
    const std::string name =
        absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, o.shards);
    for (size_t i = bounds[s]; i < bounds[s + 1]; ++i) weight_map[plan[i].spec.name] = name;
    if (auto st = WriteShard(dir + "/" + name, plan, bounds[s], bounds[s + 1], o.seed, threads);
        !st.ok()) {
      return st;
    }
  }
  return WriteJson(fs::path(dir) / "model.safetensors.index.json",
                   {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
}

}  // namespace llama
