// The Llama-2 chat prompt, exactly as Meta's `chat_completion` builds it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer.h"

namespace llama {

struct ChatMessage {
  std::string role;     // "system" (first only), "user", "assistant"
  std::string content;
};

// Optional system message folded into the first user turn as "<<SYS>>\n{sys}\n<</SYS>>\n\n";
// each (user, assistant) pair -> BOS "[INST] {u} [/INST] {a} " EOS; last user turn ->
// BOS "[INST] {u} [/INST]"; contents stripped. Roles must alternate user/assistant and
// end with user: anything else is InvalidArgument.
absl::StatusOr<std::vector<int>> EncodeLlama2Chat(const Tokenizer& tok,
                                                  const std::vector<ChatMessage>& dialog);

}  // namespace llama
