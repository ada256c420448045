// Synthetic checkpoint writer -> loader round trips for all four branch layouts, sharding,
// determinism, tokenizer handling and bad options.
#include "engine/checkpoint_writer.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/checkpoint_writer_spm.h"
#include "engine/config.h"
#include "engine/runner.h"
#include "engine/safetensors.h"
#include "engine/weights.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Small, but with GQA, a partial last group (K = 160 with G = 64/128) and K = 64 < G.
CheckpointShape SmallShape() { return {64, 160, 2, 4, 2, 512, 256, false}; }

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CheckpointWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("ckpt_writer_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& sub, const std::string& layout, uint64_t seed,
                    int shards = 1, CheckpointShape shape = SmallShape()) {
    CheckpointOptions o;
    o.shape = shape;
    o.layout = *LayoutByName(layout);
    o.seed = seed;
    o.shards = shards;
    o.threads = 2;
    const std::string d = (dir_ / sub).string();
    const absl::Status s = WriteCheckpoint(d, o);
    EXPECT_TRUE(s.ok()) << s;
    return d;
  }

  fs::path dir_;
};

TEST_F(CheckpointWriterTest, AllLayoutsRoundTripThroughLoader) {
  ASSERT_EQ(AllLayoutNames().size(), 4u);
  const CheckpointShape s = SmallShape();
  for (const std::string& layout : AllLayoutNames()) {
    SCOPED_TRACE(layout);
    const CheckpointLayout l = *LayoutByName(layout);
    const std::string d = Write(layout, layout, 7);
    for (const char* f : {"config.json", "quantize_config.json", "generation_config.json",
                          "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                          "model.safetensors"}) {
      EXPECT_TRUE(fs::exists(fs::path(d) / f)) << f;
    }
    auto w = LoadModelWeights(d);
    ASSERT_TRUE(w.ok()) << w.status();
    const ModelWeights& m = **w;
    EXPECT_EQ(m.config.hidden_size, s.hidden);
    EXPECT_EQ(m.config.intermediate_size, s.intermediate);
    EXPECT_EQ(m.config.num_hidden_layers, s.layers);
    EXPECT_EQ(m.config.num_key_value_heads, s.kv_heads);
    EXPECT_EQ(m.config.head_dim, s.hidden / s.heads);
    EXPECT_EQ(m.config.vocab_size, s.vocab);
    ASSERT_TRUE(m.config.quant.has_value());
    EXPECT_EQ(m.config.quant->group_size, l.group_size);
    EXPECT_EQ(m.config.quant->desc_act, l.desc_act);
    EXPECT_EQ(m.lm_head.size(), static_cast<size_t>(s.vocab) * s.hidden);  // untied

    // Raw file facts, read independently of the loader's GPTQ code.
    auto store = TensorStore::OpenFile(d + "/model.safetensors");
    ASSERT_TRUE(store.ok());
    auto qz = store->ReadI32("model.layers.1.mlp.down_proj.qzeros");
    ASSERT_TRUE(qz.ok());
    for (int32_t z : *qz) ASSERT_EQ(static_cast<uint32_t>(z), 0x77777777u);
    auto gi = store->ReadI32("model.layers.1.mlp.down_proj.g_idx", {s.intermediate});
    ASSERT_TRUE(gi.ok());
    const int G = l.group_size, K = s.intermediate, ng = (K + G - 1) / G;
    std::vector<int> counts(ng, 0);
    bool scattered = false;
    for (int k = 0; k < K; ++k) {
      ASSERT_GE((*gi)[k], 0);
      ASSERT_LT((*gi)[k], ng);
      ++counts[(*gi)[k]];
      if (k > 0 && (*gi)[k] < (*gi)[k - 1]) scattered = true;
    }
    for (int g = 0; g < ng; ++g) EXPECT_EQ(counts[g], std::min(G, K - g * G)) << "group " << g;
    EXPECT_EQ(scattered, l.desc_act);

    for (const LayerWeights& lw : m.layers) {
      // One act-order permutation per layer input, as in real checkpoints (q|k|v, gate|up).
      EXPECT_EQ(lw.wq.gptq.perm, lw.wk.gptq.perm);
      EXPECT_EQ(lw.wq.gptq.perm, lw.wv.gptq.perm);
      EXPECT_EQ(lw.w_gate.gptq.perm, lw.w_up.gptq.perm);
      if (l.desc_act && s.hidden > G) EXPECT_NE(lw.wq.gptq.perm, lw.w_gate.gptq.perm);
      for (const Linear* lin : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
        ASSERT_TRUE(lin->quantized);
        const GptqLinear& g = lin->gptq;
        // One group (K <= G) leaves g_idx all-zero, i.e. monotone: no permutation needed.
        EXPECT_EQ(g.perm.empty(), !l.desc_act || g.num_groups() == 1) << "K=" << g.K;
        for (uint8_t z : g.zeros) ASSERT_EQ(z, 8);
        for (float sc : g.scales) {
          ASSERT_GT(sc, 0.74f * 0.02f / 7);
          ASSERT_LT(sc, 1.26f * 0.02f / 7);
        }
        float max_abs = 0;
        for (int k = 0; k < g.K; k += 7) {
          for (int n = 0; n < g.N; ++n) max_abs = std::max(max_abs, std::abs(g.At(k, n)));
        }
        EXPECT_GT(max_abs, 0.0f);
        EXPECT_LE(max_abs, 7 * 1.26f * 0.02f / 7);
      }
      for (float v : lw.attn_norm) ASSERT_NEAR(v, 1.0f, 0.06f);
    }
  }
}

TEST_F(CheckpointWriterTest, SameSeedSameBytesDifferentSeedDiffers) {
  const std::string a = Write("a", "gptq-4bit-32g-actorder_True", 42);
  const std::string b = Write("b", "gptq-4bit-32g-actorder_True", 42);
  const std::string c = Write("c", "gptq-4bit-32g-actorder_True", 43);
  EXPECT_EQ(ReadAll(fs::path(a) / "model.safetensors"), ReadAll(fs::path(b) / "model.safetensors"));
  EXPECT_NE(ReadAll(fs::path(a) / "model.safetensors"), ReadAll(fs::path(c) / "model.safetensors"));
  EXPECT_EQ(ReadAll(fs::path(a) / "tokenizer.model"), ReadAll(fs::path(b) / "tokenizer.model"));
}

TEST_F(CheckpointWriterTest, ShardedRoundTripEqualsSingleFile) {
  const std::string one = Write("one", "gptq-4bit-64g-actorder_True", 5, 1);
  const std::string three = Write("three", "gptq-4bit-64g-actorder_True", 5, 3);
  EXPECT_FALSE(fs::exists(fs::path(three) / "model.safetensors"));
  const auto idx = testing::ReadJson(three + "/model.safetensors.index.json");
  std::set<std::string> files;
  for (const auto& [name, file] : idx["weight_map"].items()) files.insert(file.get<std::string>());
  EXPECT_EQ(files, (std::set<std::string>{"model-00001-of-00003.safetensors",
                                          "model-00002-of-00003.safetensors",
                                          "model-00003-of-00003.safetensors"}));
  auto w1 = LoadModelWeights(one);
  auto w3 = LoadModelWeights(three);
  ASSERT_TRUE(w1.ok()) << w1.status();
  ASSERT_TRUE(w3.ok()) << w3.status();
  EXPECT_EQ((*w1)->embed, (*w3)->embed);
  EXPECT_EQ((*w1)->lm_head, (*w3)->lm_head);
  for (int i = 0; i < 2; ++i) {
    const LayerWeights& a = (*w1)->layers[i];
    const LayerWeights& b = (*w3)->layers[i];
    EXPECT_EQ(a.w_down.gptq.qweight, b.w_down.gptq.qweight);
    EXPECT_EQ(a.w_down.gptq.perm, b.w_down.gptq.perm);
    EXPECT_EQ(a.wq.gptq.scales, b.wq.gptq.scales);
    EXPECT_EQ(a.ffn_norm, b.ffn_norm);
  }
}

TEST_F(CheckpointWriterTest, TinyPresetWithTiedEmbeddingsLoads) {
  const std::string d = Write("tiny", "main", 0, 1, TinyShape());
  auto w = LoadModelWeights(d);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE((*w)->config.tie_word_embeddings);
  EXPECT_TRUE((*w)->lm_head.empty());
  EXPECT_EQ((*w)->config.num_key_value_heads, TinyShape().kv_heads);
  auto g = LoadGenerationConfig(d);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->eos_token_ids, std::vector<int>{2});
}

TEST_F(CheckpointWriterTest, TrainedTokenizerHasVocabPieces) {
  const std::string d = Write("tok", "main", 1);
  std::string err;
  EXPECT_EQ(spm::PieceCount(d + "/tokenizer.model", &err), 512) << err;
  const absl::Status s = TrainDemoTokenizer((dir_ / "huge.model").string(), 32000);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("32000"));
}

TEST_F(CheckpointWriterTest, CopiedTokenizerMustMatchVocab) {
  CheckpointOptions o;
  o.shape = SmallShape();
  o.layout = *LayoutByName("main");
  o.tokenizer_path = testing::FixturesDir() + "/llama2-tokenizer/tokenizer.model";
  absl::Status s = WriteCheckpoint((dir_ / "x").string(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("32000 pieces but vocab is 512"));

  o.tokenizer_path = testing::FixturesDir() + "/stories260K-fp32/tokenizer.model";  // 512
  s = WriteCheckpoint((dir_ / "y").string(), o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ReadAll(dir_ / "y" / "tokenizer.model"), ReadAll(o.tokenizer_path));
}

TEST_F(CheckpointWriterTest, BadOptionsRejected) {
  CheckpointOptions o;
  o.shape = SmallShape();
  o.shape.kv_heads = 3;
  o.layout = *LayoutByName("main");
  EXPECT_FALSE(WriteCheckpoint((dir_ / "a").string(), o).ok());
  o.shape = SmallShape();
  o.shards = 100000;
  EXPECT_FALSE(WriteCheckpoint((dir_ / "b").string(), o).ok());
  EXPECT_FALSE(LayoutByName("gptq-8bit").ok());
  EXPECT_FALSE(ShapeByPreset("llama3").ok());
  const CheckpointShape big = *ShapeByPreset("llama2-7b");
  EXPECT_EQ(big.hidden, 4096);
  EXPECT_EQ(big.layers, 32);
  EXPECT_EQ(big.vocab, 32000);
  EXPECT_FALSE(big.tie_embeddings);
}

// The random scales must keep a deep model's activations sane (the CUDA backend runs fp16):
// 32 layers like Llama-2-7B, narrower. Logits finite, bounded, and not degenerate.
TEST_F(CheckpointWriterTest, DeepSyntheticModelForwardStaysFinite) {
  const CheckpointShape shape{512, 1376, 32, 8, 8, 512, 64, false};
  const std::string d = Write("deep", "gptq-4bit-128g-actorder_True", 3, 1, shape);
  auto w = LoadModelWeights(d);
  ASSERT_TRUE(w.ok()) << w.status();
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.threads = 2;
  auto r = CreateCpuRunner(*w, opt);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<int32_t> prompt = {1, 50, 300, 7, 499, 12, 260, 33};
  std::vector<float> logits(prompt.size() * shape.vocab);
  ASSERT_TRUE((*r)->Prefill(0, 0, prompt, absl::MakeSpan(logits), /*all_logits=*/true).ok());
  double sum = 0, sum2 = 0, max_abs = 0;
  for (float v : logits) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sum2 += static_cast<double>(v) * v;
    max_abs = std::max(max_abs, static_cast<double>(std::abs(v)));
  }
  const double mean = sum / logits.size();
  const double stddev = std::sqrt(sum2 / logits.size() - mean * mean);
  RecordProperty("max_abs_logit", std::to_string(max_abs));
  RecordProperty("logit_stddev", std::to_string(stddev));
  EXPECT_LT(max_abs, 1000.0);
  EXPECT_GT(stddev, 1e-3);
}

}  // namespace
}  // namespace llama
