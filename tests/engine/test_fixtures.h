// Shared helpers for tests that read ../shared/fixtures (read-only): paths, the reference
// outputs, and the fixture tokenizers.
#pragma once

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace llama::testing {

// The fixtures dir: $LLAMA_FIXTURES_DIR if set (device machine), else the compiled-in path.
inline std::string FixturesDir() {
  if (const char* env = std::getenv("LLAMA_FIXTURES_DIR"); env && *env) return env;
  return LLAMA_FIXTURES_DIR;
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline const nlohmann::json& References() {
  static const nlohmann::json refs =
      ReadJson(FixturesDir() + "/stories260K-reference/references.json")["references"];
  return refs;
}

// "fp32" -> stories260K-fp32, a branch name -> stories260K-GPTQ/<branch>.
inline std::string ModelDir(const std::string& name) {
  if (name == "fp32") return FixturesDir() + "/stories260K-fp32";
  return FixturesDir() + "/stories260K-GPTQ/" + name;
}

inline const std::vector<std::string>& AllModels() {
  static const std::vector<std::string> all = {"fp32", "main", "gptq-4bit-32g-actorder_True",
                                               "gptq-4bit-64g-actorder_True",
                                               "gptq-4bit-128g-actorder_True"};
  return all;
}

// Loads the tokenizer at `path` (a dir or a tokenizer.model) for the life of the test
// binary; a load failure is a test failure (and null).
inline const Tokenizer* LoadTokenizerForever(const std::string& path) {
  auto t = Tokenizer::Load(path);
  if (!t.ok()) {
    ADD_FAILURE() << t.status();
    return nullptr;
  }
  return t->release();
}

// The Llama 2 tokenizer (llama2-tokenizer), loaded once.
inline const Tokenizer& Llama2() {
  static const Tokenizer* tok = LoadTokenizerForever(FixturesDir() + "/llama2-tokenizer");
  return *tok;
}

// The stories260K tokenizer (512 pieces), loaded once; null, and a test failure, when it
// cannot be loaded.
inline std::shared_ptr<const Tokenizer> StoriesTokenizer() {
  static std::shared_ptr<const Tokenizer> tok = [] {
    auto t = Tokenizer::Load(ModelDir("fp32"));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::shared_ptr<const Tokenizer>(std::move(*t)) : nullptr;
  }();
  return tok;
}

}  // namespace llama::testing
