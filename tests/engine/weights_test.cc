// LoadModelWeights on the fixtures: every dir loads, GPTQ dequant equals AutoGPTQ's formula
// computed independently from the raw file, act-order groups are contiguous, and broken
// checkpoints (written into a temp dir) fail with clear errors.
#include "engine/weights.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char* const kBranches[] = {"main", "gptq-4bit-32g-actorder_True",
                                 "gptq-4bit-64g-actorder_True", "gptq-4bit-128g-actorder_True"};
const char* const kProjs[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                              "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                              "mlp.down_proj"};

// Independent raw reader (no engine code): header JSON + bytes.
struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
std::map<std::string, RawTensor> ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  uint64_t n = 0;
  std::memcpy(&n, all.data(), 8);
  auto h = nlohmann::json::parse(all.substr(8, n));
  std::map<std::string, RawTensor> out;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    RawTensor t;
    t.dtype = it.value()["dtype"];
    t.shape = it.value()["shape"].get<std::vector<int64_t>>();
    const uint64_t b = it.value()["data_offsets"][0], e = it.value()["data_offsets"][1];
    t.bytes = all.substr(8 + n + b, e - b);
    out[it.key()] = t;
  }
  return out;
}
int32_t I32At(const RawTensor& t, size_t i) {
  int32_t v;
  std::memcpy(&v, t.bytes.data() + 4 * i, 4);
  return v;
}
float F16At(const RawTensor& t, size_t i) {
  uint16_t h;
  std::memcpy(&h, t.bytes.data() + 2 * i, 2);
  const int e = (h >> 10) & 31, m = h & 1023;
  const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                           : std::ldexp(static_cast<float>(m + 1024), e - 25);
  return (h & 0x8000) ? -mag : mag;
}

TEST(WeightsTest, EveryFixtureLoads) {
  for (const std::string& name : testing::AllModels()) {
    SCOPED_TRACE(name);
    auto w = LoadModelWeights(testing::ModelDir(name));
    ASSERT_TRUE(w.ok()) << w.status();
    const ModelWeights& m = **w;
    EXPECT_EQ(m.config.hidden_size, 64);
    ASSERT_EQ(m.layers.size(), 5u);
    EXPECT_EQ(m.embed.size(), 512u * 64);
    EXPECT_TRUE(m.lm_head.empty());  // tied
    EXPECT_EQ(&m.output_weight(), &m.embed);
    EXPECT_EQ(m.final_norm.size(), 64u);
    const bool quant = name != "fp32";
    for (const auto& l : m.layers) {
      EXPECT_EQ(l.attn_norm.size(), 64u);
      EXPECT_EQ(l.wq.quantized, quant);
      EXPECT_EQ(l.w_down.quantized, quant);
      EXPECT_EQ(l.wk.N, 32);
      EXPECT_EQ(l.w_down.K, 192);
      if (!quant) EXPECT_EQ(l.w_down.dense.size(), 192u * 64);
    }
    EXPECT_GT(m.ByteSize(), 512u * 64 * 4);
  }
}

TEST(WeightsTest, DenseEqualsRawFloats) {
  const std::string dir = testing::ModelDir("fp32");
  auto raw = ReadRaw(dir + "/model.safetensors");
  auto w = LoadModelWeights(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const RawTensor& t = raw.at("model.layers.2.mlp.down_proj.weight");
  ASSERT_EQ(t.dtype, "F32");
  const auto& dense = (*w)->layers[2].w_down.dense;
  ASSERT_EQ(dense.size() * 4, t.bytes.size());
  EXPECT_EQ(std::memcmp(dense.data(), t.bytes.data(), t.bytes.size()), 0);
}

class GptqBranchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GptqBranchTest, DequantEqualsAutoGptqFormulaOnRawTensors) {
  const std::string dir = testing::ModelDir(GetParam());
  auto raw = ReadRaw(dir + "/model.safetensors");
  auto w = LoadModelWeights(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  for (int li = 0; li < 5; ++li) {
    const LayerWeights& lw = (*w)->layers[li];
    const Linear* lins[] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
    for (int p = 0; p < 7; ++p) {
      const std::string pre = "model.layers." + std::to_string(li) + "." + kProjs[p];
      SCOPED_TRACE(pre);
      const RawTensor& qw = raw.at(pre + ".qweight");
      const RawTensor& qz = raw.at(pre + ".qzeros");
      const RawTensor& sc = raw.at(pre + ".scales");
      const RawTensor& gi = raw.at(pre + ".g_idx");
      const int N = static_cast<int>(qw.shape[1]);
      const int K = static_cast<int>(gi.shape[0]);
      const GptqLinear& g = lins[p]->gptq;
      ASSERT_TRUE(lins[p]->quantized);
      ASSERT_EQ(g.K, K);
      ASSERT_EQ(g.N, N);
      int mismatches = 0;
      for (int k = 0; k < K; ++k) {
        const int grp = I32At(gi, k);
        for (int n = 0; n < N; ++n) {
          const uint32_t word = static_cast<uint32_t>(I32At(qw, (k / 8) * N + n));
          const int q = (word >> (4 * (k % 8))) & 15;
          const uint32_t zword = static_cast<uint32_t>(I32At(qz, grp * (N / 8) + n / 8));
          const int stored_zero = (zword >> (4 * (n % 8))) & 15;
          const float expect = F16At(sc, grp * N + n) *
                               (static_cast<float>(q) - static_cast<float>(stored_zero + 1));
          if (g.At(k, n) != expect && ++mismatches <= 3) {
            ADD_FAILURE() << "k=" << k << " n=" << n << " got " << g.At(k, n) << " want "
                          << expect;
          }
        }
      }
      EXPECT_EQ(mismatches, 0);
    }
  }
}

TEST_P(GptqBranchTest, ActOrderPermutationGivesContiguousGroups) {
  const std::string dir = testing::ModelDir(GetParam());
  const bool act_order = GetParam() != "main";
  auto raw = ReadRaw(dir + "/model.safetensors");
  auto w = LoadModelWeights(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const GptqLinear& g = (*w)->layers[1].w_down.gptq;  // K = 192
  const RawTensor& gi = raw.at("model.layers.1.mlp.down_proj.g_idx");
  const int K = 192;
  const int G = (*w)->config.quant->group_size;
  EXPECT_EQ(g.group_size, G);
  EXPECT_EQ(g.num_groups(), (K + G - 1) / G);
  ASSERT_EQ(g.group_start.front(), 0);
  ASSERT_EQ(g.group_start.back(), K);
  EXPECT_TRUE(std::is_sorted(g.group_start.begin(), g.group_start.end()));
  if (!act_order) {
    EXPECT_TRUE(g.perm.empty());
    return;
  }
  ASSERT_EQ(g.perm.size(), static_cast<size_t>(K));
  std::set<int> seen(g.perm.begin(), g.perm.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(K));
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), K - 1);
  bool scattered = false;
  for (int gr = 0; gr < g.num_groups(); ++gr) {
    for (int k = g.group_start[gr]; k < g.group_start[gr + 1]; ++k) {
      EXPECT_EQ(I32At(gi, g.perm[k]), gr) << "permuted row " << k;
      if (k > 0 && g.perm[k] < g.perm[k - 1] && k != g.group_start[gr]) {
        // within a group, stable sort keeps original order
        ADD_FAILURE() << "permutation not stable at " << k;
      }
    }
  }
  for (int k = 1; k < K; ++k) scattered |= I32At(gi, k) < I32At(gi, k - 1);
  EXPECT_TRUE(scattered) << "fixture g_idx expected to be act-order scattered";
}

INSTANTIATE_TEST_SUITE_P(Branches, GptqBranchTest, ::testing::ValuesIn(std::vector<std::string>(std::begin(kBranches), std::end(kBranches))),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return s;
                         });

// ---------------------------------------------------------------- bad checkpoints

class EditedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("weights_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Copies the `main` fixture's json files and rewrites model.safetensors after `mutate`.
  void CopyMain(const std::function<void(std::vector<TensorData>&)>& mutate) {
    const std::string src = testing::ModelDir("main");
    for (const char* f : {"config.json", "quantize_config.json", "generation_config.json"}) {
      fs::copy_file(fs::path(src) / f, dir_ / f);
    }
    auto store = TensorStore::OpenFile(src + "/model.safetensors");
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<TensorData> tensors;
    for (const auto& name : store->Names()) {
      const TensorView* v = *store->Get(name);
      tensors.push_back({{name, v->dtype, v->shape}, {v->data, v->data + v->nbytes}});
    }
    mutate(tensors);
    ASSERT_TRUE(WriteSafetensors((dir_ / "model.safetensors").string(), tensors).ok());
  }
  static TensorData* Find(std::vector<TensorData>& ts, const std::string& name) {
    for (auto& t : ts) {
      if (t.spec.name == name) return &t;
    }
    return nullptr;
  }

  fs::path dir_;
};

TEST_F(EditedCheckpointTest, UnmodifiedCopyLoads) {
  CopyMain([](std::vector<TensorData>&) {});
  auto w = LoadModelWeights(dir_.string());
  EXPECT_TRUE(w.ok()) << w.status();
}

TEST_F(EditedCheckpointTest, WrongDtypeForQweight) {
  CopyMain([](std::vector<TensorData>& ts) {
    Find(ts, "model.layers.0.self_attn.q_proj.qweight")->spec.dtype = DType::kF32;
  });
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(w.status().message(), HasSubstr("model.layers.0.self_attn.q_proj.qweight"));
  EXPECT_THAT(w.status().message(), HasSubstr("dtype F32 but expected I32"));
}

TEST_F(EditedCheckpointTest, ShapeMismatchVsConfig) {
  CopyMain([](std::vector<TensorData>& ts) {
    TensorData* t = Find(ts, "model.layers.3.mlp.down_proj.qweight");  // [24, 64]
    t->spec.shape = {24, 32};
    t->bytes.resize(24 * 32 * 4);
  });
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(),
              HasSubstr("model.layers.3.mlp.down_proj.qweight: shape [24,32] but config "
                        "expects [24,64]"));
  EXPECT_THAT(w.status().message(), HasSubstr("model.safetensors"));
}

TEST_F(EditedCheckpointTest, MissingTensor) {
  CopyMain([](std::vector<TensorData>& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(),
                            [](const TensorData& t) {
                              return t.spec.name == "model.layers.4.mlp.up_proj.scales";
                            }),
             ts.end());
  });
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("model.layers.4.mlp.up_proj.scales"));
}

TEST_F(EditedCheckpointTest, MissingEmbedding) {
  CopyMain([](std::vector<TensorData>& ts) {
    ts.erase(ts.begin());  // sorted names: model.embed_tokens.weight first
  });
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("model.embed_tokens.weight"));
}

TEST_F(EditedCheckpointTest, GIdxOutOfRange) {
  CopyMain([](std::vector<TensorData>& ts) {
    TensorData* t = Find(ts, "model.layers.2.self_attn.o_proj.g_idx");
    const int32_t bad = 7;  // K=64, G=128 -> one group
    std::memcpy(t->bytes.data() + 4 * 5, &bad, 4);
  });
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("model.layers.2.self_attn.o_proj.g_idx[5] = 7"));
  EXPECT_THAT(w.status().message(), HasSubstr("out of range"));
}

TEST_F(EditedCheckpointTest, NoSafetensorsFile) {
  CopyMain([](std::vector<TensorData>&) {});
  fs::remove(dir_ / "model.safetensors");
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("model.safetensors"));
}

TEST_F(EditedCheckpointTest, GptqV2StoresRealZero) {
  // Same weights re-encoded as gptq_v2: stored zero 8 instead of v1's 7.
  CopyMain([](std::vector<TensorData>& ts) {
    for (auto& t : ts) {
      if (t.spec.name.size() > 7 && t.spec.name.substr(t.spec.name.size() - 7) == ".qzeros") {
        for (size_t i = 0; i + 4 <= t.bytes.size(); i += 4) {
          uint32_t w;
          std::memcpy(&w, t.bytes.data() + i, 4);
          uint32_t out = 0;
          for (int j = 0; j < 8; ++j) out |= (((w >> (4 * j)) & 15u) + 1) << (4 * j);
          std::memcpy(t.bytes.data() + i, &out, 4);
        }
      }
    }
  });
  auto q = testing::ReadJson((dir_ / "quantize_config.json").string());
  q["checkpoint_format"] = "gptq_v2";
  std::ofstream(dir_ / "quantize_config.json", std::ios::trunc) << q.dump();
  auto v2 = LoadModelWeights(dir_.string());
  ASSERT_TRUE(v2.ok()) << v2.status();
  auto v1 = LoadModelWeights(testing::ModelDir("main"));
  ASSERT_TRUE(v1.ok()) << v1.status();
  const GptqLinear& a = (*v1)->layers[0].w_down.gptq;
  const GptqLinear& b = (*v2)->layers[0].w_down.gptq;
  EXPECT_EQ(a.zeros, b.zeros);
  for (int k = 0; k < a.K; k += 5) {
    for (int n = 0; n < a.N; ++n) ASSERT_EQ(a.At(k, n), b.At(k, n));
  }
}

TEST_F(EditedCheckpointTest, QuantizedTensorsWithoutQuantConfig) {
  CopyMain([](std::vector<TensorData>&) {});
  fs::remove(dir_ / "quantize_config.json");
  auto c = testing::ReadJson((dir_ / "config.json").string());
  c.erase("quantization_config");
  std::ofstream(dir_ / "config.json", std::ios::trunc) << c.dump();
  auto w = LoadModelWeights(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("qweight is GPTQ-quantized but config.json has no"));
}

}  // namespace
}  // namespace llama
