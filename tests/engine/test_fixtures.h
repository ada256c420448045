// Shared helpers for tests that read ../shared/fixtures (read-only).
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

}  // namespace llama::testing
