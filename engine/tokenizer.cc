#include "engine/tokenizer.h"

#include <filesystem>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

// sentencepiece's header declares `namespace absl { using std::string_view; }`, which
// clashes with Abseil's own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0 in
// the Debian build). Rename its shim namespace for this include only: its API then takes
// std::string_view, exactly what the library was compiled with.
#define absl sentencepiece_absl_shim
#include "sentencepiece_processor.h"
#undef absl

namespace llama {
namespace {

constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD
// A UTF-8 character spans at most 4 bytes (byte-fallback pieces).
constexpr size_t kMaxUtf8Bytes = 4;
// Bound on the context window kept by StreamDecoder while pieces decode to nothing.
constexpr size_t kMaxWindow = 64;
// Prompt ids looked at for the decoding context of the first generated piece.
constexpr size_t kMaxPromptTail = 16;

}  // namespace

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path_or_dir) {
  std::error_code ec;
  std::string path = path_or_dir;
  if (std::filesystem::is_directory(path_or_dir, ec)) {
    path = (std::filesystem::path(path_or_dir) / "tokenizer.model").string();
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer: no sentencepiece model at ", path));
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  const auto st = tok->sp_->Load(path);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: cannot load sentencepiece model ", path, ": ", st.ToString()));
  }
  if (tok->sp_->GetPieceSize() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: empty vocabulary in ", path));
  }
  return tok;
}

std::vector<int> Tokenizer::Encode(absl::string_view text, bool add_bos, bool add_eos) const {
  // SentencePieceProcessor::Encode never turns control-symbol text ("<s>", "</s>") into
  // control ids: they are encoded as ordinary text.
  std::vector<int> pieces;
  const auto st = sp_->Encode(std::string_view(text.data(), text.size()), &pieces);
  std::vector<int> ids;
  ids.reserve(pieces.size() + 2);
  if (add_bos && sp_->bos_id() >= 0) ids.push_back(sp_->bos_id());
  if (st.ok()) ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_eos && sp_->eos_id() >= 0) ids.push_back(sp_->eos_id());
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  const int n = sp_->GetPieceSize();
  std::vector<int> valid;
  valid.reserve(ids.size());
  for (int id : ids) {
    if (id >= 0 && id < n) valid.push_back(id);  // out-of-range ids decode to nothing
  }
  std::string text;
  if (!sp_->Decode(valid, &text).ok()) return "";
  return text;
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }

// ---------------------------------------------------------------------------------------
// StreamDecoder
//
// ids_ is a small window: ids_[0, prefix_len_) is context whose text was already emitted
// (or is prompt text) and starts on a character boundary; ids_[prefix_len_, end) are ids
// whose text is not yet emitted (held back because the decoded text ends in an incomplete
// byte-fallback sequence). Each Push decodes only the window, and the emitted text is
// Decode(window) minus Decode(context): sentencepiece decodes piece by piece except for
// the first piece's leading space and runs of byte pieces, and both are handled by the
// window starting on a boundary and containing visible context.
// ---------------------------------------------------------------------------------------

namespace {

// True if `id` on its own decodes to U+FFFD, i.e. it is (most likely) a byte-fallback piece
// of a non-ASCII byte.
bool IsHighBytePiece(const Tokenizer* tok, int id) {
  return tok->Decode({id}) == kReplacementChar;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer* tok, std::vector<int> prompt_ids) : tok_(tok) {
  // Context: the prompt's tail, started on a piece that is not a high byte (so not in the
  // middle of a multi-byte character).
  const size_t n = prompt_ids.size();
  const size_t lowest = n > kMaxPromptTail ? n - kMaxPromptTail : 0;
  size_t start = n > 4 ? n - 4 : 0;
  while (start > lowest && IsHighBytePiece(tok_, prompt_ids[start])) --start;
  ids_.assign(prompt_ids.begin() + static_cast<std::ptrdiff_t>(start), prompt_ids.end());
  prefix_len_ = ids_.size();
  emitted_ = 0;
}

std::string StreamDecoder::Push(int id) {
  ids_.push_back(id);
  const size_t held = ids_.size() - prefix_len_;
  const std::string context =
      tok_->Decode(std::vector<int>(ids_.begin(), ids_.begin() + prefix_len_));
  std::string text = tok_->Decode(ids_);

  size_t emit_ids = held;  // new ids whose text is emitted now
  if (absl::EndsWith(text, kReplacementChar) && IsHighBytePiece(tok_, id)) {
    if (held < kMaxUtf8Bytes) return "";  // may still become a complete character
    // kMaxUtf8Bytes high bytes without completing a character: the first of them cannot
    // start a valid character, so it decodes alone to U+FFFD; emit through it.
    emit_ids = 1;
    text = tok_->Decode(std::vector<int>(ids_.begin(), ids_.begin() + prefix_len_ + 1));
  }

  std::string out;
  if (text.size() >= context.size() + emitted_) out = text.substr(context.size() + emitted_);
  // Slide the window: the emitted ids become the context, unless they decoded to nothing
  // (e.g. a control id or a lone "▁"), in which case older context is kept so that the
  // leading-space rule of the next piece stays as in the full decode.
  const size_t new_prefix = prefix_len_ + emit_ids;
  if (!out.empty() || new_prefix > kMaxWindow) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_len_));
    prefix_len_ = emit_ids;
  } else {
    prefix_len_ = new_prefix;
  }
  emitted_ = 0;
  // Ids still held (only after the forced emission above) are re-examined on the next Push.
  return out;
}

std::string StreamDecoder::Flush() {
  if (ids_.size() == prefix_len_) return "";
  const std::string context =
      tok_->Decode(std::vector<int>(ids_.begin(), ids_.begin() + prefix_len_));
  const std::string text = tok_->Decode(ids_);
  std::string out;
  if (text.size() >= context.size() + emitted_) out = text.substr(context.size() + emitted_);
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_len_));
  prefix_len_ = ids_.size();
  emitted_ = 0;
  return out;
}

}  // namespace llama
