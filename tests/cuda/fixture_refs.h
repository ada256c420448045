// The stories260K fixtures' independent references (greedy sequences, logits) for the CUDA
// tests: ../shared/fixtures/stories260K-reference/references.json, parsed once.
#pragma once

#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {

inline const nlohmann::json& Refs() {
  static const nlohmann::json refs = [] {
    std::ifstream in(CudaFixturesDir() + "/stories260K-reference/references.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str())["references"];
  }();
  return refs;
}

}  // namespace llama::testing
