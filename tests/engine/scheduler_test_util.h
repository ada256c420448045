// Helpers of the scheduler tests (scheduler_test.cc, scheduler_cpu_test.cc): greedy
// requests and reading a stream to its end.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/scheduler.h"

namespace llama::testing {

// Everything one stream produced.
struct Collected {
  std::vector<int> tokens;
  std::string text;
  std::vector<StreamChunk> chunks;
  FinishReason finish = FinishReason::kNone;
  absl::Status status;
};

// Reads a stream to its end.
inline Collected Collect(RequestHandle& h) {
  Collected c;
  StreamChunk chunk;
  // Bounded: every stream ends (length cap), and each chunk carries at most one token.
  for (int i = 0; i < 100000 && h.Next(&chunk); ++i) {
    c.tokens.insert(c.tokens.end(), chunk.tokens.begin(), chunk.tokens.end());
    c.text += chunk.text;
    c.finish = chunk.finish;
    c.chunks.push_back(chunk);
  }
  c.status = h.status();
  return c;
}

// A greedy (temperature 0) request for `max_new` tokens.
inline GenerationRequest Greedy(std::vector<int> prompt, int max_new, std::string id = "") {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.params.max_new_tokens = max_new;
  r.params.temperature = 0.0f;
  r.id = std::move(id);
  return r;
}

}  // namespace llama::testing
