// LoadModelConfig / LoadGenerationConfig on the fixtures and on edited copies in a temp dir.
#include "engine/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

TEST(ConfigFixtureTest, EveryFixtureMatchesItsJson) {
  for (const std::string& name : testing::AllModels()) {
    SCOPED_TRACE(name);
    const std::string dir = testing::ModelDir(name);
    const json j = testing::ReadJson(dir + "/config.json");
    auto c = LoadModelConfig(dir);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->architecture, "LlamaForCausalLM");
    EXPECT_EQ(c->hidden_size, j["hidden_size"].get<int>());
    EXPECT_EQ(c->intermediate_size, j["intermediate_size"].get<int>());
    EXPECT_EQ(c->num_hidden_layers, j["num_hidden_layers"].get<int>());
    EXPECT_EQ(c->num_attention_heads, j["num_attention_heads"].get<int>());
    EXPECT_EQ(c->num_key_value_heads, j["num_key_value_heads"].get<int>());
    EXPECT_EQ(c->head_dim, j["head_dim"].get<int>());
    EXPECT_EQ(c->vocab_size, j["vocab_size"].get<int>());
    EXPECT_EQ(c->max_position_embeddings, j["max_position_embeddings"].get<int>());
    EXPECT_FLOAT_EQ(c->rms_norm_eps, j["rms_norm_eps"].get<float>());
    EXPECT_FLOAT_EQ(c->rope_theta, j["rope_theta"].get<float>());
    EXPECT_EQ(c->tie_word_embeddings, j["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c->bos_token_id, j["bos_token_id"].get<int>());
    EXPECT_EQ(c->eos_token_id, j["eos_token_id"].get<int>());
    if (name == "fp32") {
      EXPECT_FALSE(c->quant.has_value());
      continue;
    }
    const json q = testing::ReadJson(dir + "/quantize_config.json");
    ASSERT_TRUE(c->quant.has_value());
    EXPECT_EQ(c->quant->bits, 4);
    EXPECT_EQ(c->quant->group_size, q["group_size"].get<int>());
    EXPECT_EQ(c->quant->desc_act, q["desc_act"].get<bool>());
    EXPECT_EQ(c->quant->sym, q["sym"].get<bool>());
    EXPECT_EQ(c->quant->checkpoint_format, "gptq");
    EXPECT_EQ(c->quant->model_file_base_name, "model");

    auto g = LoadGenerationConfig(dir);
    ASSERT_TRUE(g.ok()) << g.status();
    const json gj = testing::ReadJson(dir + "/generation_config.json");
    EXPECT_EQ(g->eos_token_ids, std::vector<int>{gj["eos_token_id"].get<int>()});
    EXPECT_FLOAT_EQ(g->temperature, gj["temperature"].get<float>());
    EXPECT_FLOAT_EQ(g->top_p, gj["top_p"].get<float>());
    EXPECT_EQ(g->do_sample, gj["do_sample"].get<bool>());
    EXPECT_EQ(g->max_length, gj["max_length"].get<int>());
  }
}

class ConfigEditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string src = testing::ModelDir("gptq-4bit-32g-actorder_True");
    config_ = testing::ReadJson(src + "/config.json");
    quant_ = testing::ReadJson(src + "/quantize_config.json");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const json& j) {
    std::ofstream(dir_ / name, std::ios::trunc) << j.dump(2);
  }
  void WriteBoth() {
    Write("config.json", config_);
    Write("quantize_config.json", quant_);
  }
  std::string dir() const { return dir_.string(); }

  fs::path dir_;
  json config_, quant_;
};

TEST_F(ConfigEditTest, QuantizeConfigWinsOverConfigJson) {
  config_["quantization_config"]["group_size"] = 64;
  config_["quantization_config"]["desc_act"] = false;
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->quant->group_size, 32);
  EXPECT_TRUE(c->quant->desc_act);
  // Without quantize_config.json, config.json's quantization_config is used.
  fs::remove(dir_ / "quantize_config.json");
  c = LoadModelConfig(dir());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->quant->group_size, 64);
  EXPECT_FALSE(c->quant->desc_act);
}

TEST_F(ConfigEditTest, Bits8Rejected) {
  quant_["bits"] = 8;
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("quantize_config.json: field bits is 8"));
}

TEST_F(ConfigEditTest, Bits8InConfigJsonRejected) {
  config_["quantization_config"]["bits"] = 8;
  Write("config.json", config_);
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config.json (quantization_config)"));
  EXPECT_THAT(c.status().message(), HasSubstr("bits is 8"));
}

TEST_F(ConfigEditTest, UnknownArchitectureRejected) {
  config_["architectures"] = {"MistralForCausalLM"};
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config.json: field architectures"));
  EXPECT_THAT(c.status().message(), HasSubstr("MistralForCausalLM"));

  config_["architectures"] = {"LlamaForCausalLM"};
  config_["model_type"] = "gpt2";
  WriteBoth();
  c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("field model_type is \"gpt2\""));
}

TEST_F(ConfigEditTest, MissingRequiredField) {
  config_.erase("hidden_size");
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("config.json: field hidden_size is required"));
}

TEST_F(ConfigEditTest, WrongFieldType) {
  config_["num_hidden_layers"] = "five";
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("field num_hidden_layers is not an integer"));
}

TEST_F(ConfigEditTest, DefaultsForHeadDimAndKvHeads) {
  config_.erase("head_dim");
  config_.erase("num_key_value_heads");
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 64 / 8);
  EXPECT_EQ(c->num_key_value_heads, 8);
}

TEST_F(ConfigEditTest, KvHeadsMustDivideHeads) {
  config_["num_key_value_heads"] = 3;
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("num_key_value_heads"));
}

TEST_F(ConfigEditTest, AsymmetricV1RejectedV2Accepted) {
  quant_["sym"] = false;
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("sym=false"));
  EXPECT_THAT(c.status().message(), HasSubstr("overflow"));
  quant_["checkpoint_format"] = "gptq_v2";
  WriteBoth();
  c = LoadModelConfig(dir());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->quant->sym);
  EXPECT_EQ(c->quant->checkpoint_format, "gptq_v2");
}

TEST_F(ConfigEditTest, OtherQuantMethodRejected) {
  fs::remove(dir_ / "quantize_config.json");
  config_["quantization_config"]["quant_method"] = "awq";
  Write("config.json", config_);
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("quant_method is \"awq\""));
}

TEST_F(ConfigEditTest, InvalidJsonAndMissingFile) {
  auto c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("config.json"));
  std::ofstream(dir_ / "config.json") << "{\"hidden_size\": 64,";
  c = LoadModelConfig(dir());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config.json: invalid JSON"));
}

TEST_F(ConfigEditTest, GenerationConfigEosList) {
  Write("generation_config.json", json{{"eos_token_id", {2, 32000}}, {"top_k", 40}});
  auto g = LoadGenerationConfig(dir());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->eos_token_ids, (std::vector<int>{2, 32000}));
  EXPECT_EQ(g->top_k, 40);
  EXPECT_FLOAT_EQ(g->temperature, 1.0f);  // default when absent

  Write("generation_config.json", json{{"eos_token_id", "two"}});
  g = LoadGenerationConfig(dir());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("generation_config.json: field eos_token_id"));

  fs::remove(dir_ / "generation_config.json");
  g = LoadGenerationConfig(dir());
  ASSERT_TRUE(g.ok());  // optional file
  EXPECT_TRUE(g->eos_token_ids.empty());
}

TEST_F(ConfigEditTest, EosListInConfigJson) {
  config_["eos_token_id"] = {2, 7};
  WriteBoth();
  auto c = LoadModelConfig(dir());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_id, 2);
}

}  // namespace
}  // namespace llama
