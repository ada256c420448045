// Llama sentencepiece tokenizer (tokenizer.model) with streaming detokenization.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sentencepiece { class SentencePieceProcessor; }

namespace llama {

class Tokenizer {
 public:
  // Loads `<dir>/tokenizer.model` (or a direct path to a .model file).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path_or_dir);
  ~Tokenizer();

  // Text -> ids. Special-token text such as "<s>" is encoded literally, never as BOS.
  std::vector<int> Encode(absl::string_view text, bool add_bos = false, bool add_eos = false) const;
  // Ids -> text (BOS/EOS/control ids dropped, byte pieces merged).
  std::string Decode(const std::vector<int>& ids) const;
  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Feeds generated ids one at a time, returns the newly completed text. Never emits half
// of a UTF-8 character (incomplete byte-fallback sequences are held back) and keeps the
// leading-space handling of sentencepiece consistent with decoding the whole sequence.
class StreamDecoder {
 public:
  // prompt_ids: the ids already in context (used only so that the first generated
  // piece's leading space is decoded as the full-sequence decode would).
  StreamDecoder(const Tokenizer* tok, std::vector<int> prompt_ids = {});
  std::string Push(int id);
  std::string Flush();  // whatever is held back at the end (invalid bytes as U+FFFD)
 private:
  const Tokenizer* tok_;
  std::vector<int> ids_;
  size_t prefix_len_ = 0;   // ids_ before the generation began
  size_t emitted_ = 0;      // bytes of Decode(generated) already returned
};

}  // namespace llama
