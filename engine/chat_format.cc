#include "engine/chat_format.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace llama {
namespace {

constexpr absl::string_view kBInst = "[INST]";
constexpr absl::string_view kEInst = "[/INST]";
constexpr absl::string_view kBSys = "<<SYS>>\n";
constexpr absl::string_view kESys = "\n<</SYS>>\n\n";

// Python's str.isspace() code points (what Meta's `.strip()` removes).
bool IsPythonSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Decodes the UTF-8 character starting at s[i]; returns its length (1 for invalid bytes).
size_t DecodeAt(absl::string_view s, size_t i, uint32_t* cp) {
  const unsigned char c = s[i];
  size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *cp = 0xFFFFFFFF;
    return 1;
  }
  uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    const unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      *cp = 0xFFFFFFFF;
      return 1;
    }
    v = (v << 6) | (cc & 0x3F);
  }
  *cp = v;
  return n;
}

// Python `str.strip()` on UTF-8 text.
absl::string_view Strip(absl::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    uint32_t cp;
    const size_t n = DecodeAt(s, begin, &cp);
    if (!IsPythonSpace(cp)) break;
    begin += n;
  }
  size_t end = s.size();
  while (end > begin) {
    // Find the start of the last character.
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 &&
           end - start < 4) {
      --start;
    }
    uint32_t cp;
    const size_t n = DecodeAt(s, start, &cp);
    if (start + n != end || !IsPythonSpace(cp)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

void Append(std::vector<int>& out, const std::vector<int>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

absl::StatusOr<std::vector<int>> EncodeLlama2Chat(const Tokenizer& tok,
                                                  const std::vector<ChatMessage>& dialog) {
  if (dialog.empty()) return absl::InvalidArgumentError("chat: the dialog has no messages");

  // Turns after folding the system prompt into the first user message; `index` maps each
  // turn back to the caller's message numbering for error messages.
  std::vector<std::string> contents;
  std::vector<size_t> index;
  size_t first = 0;
  std::string system;
  bool has_system = false;
  if (dialog[0].role == "system") {
    has_system = true;
    system = dialog[0].content;
    first = 1;
    if (dialog.size() == 1) {
      return absl::InvalidArgumentError(
          "chat: the dialog has only a system message; a user message must follow it");
    }
  }
  for (size_t i = first; i < dialog.size(); ++i) {
    const std::string& role = dialog[i].role;
    const bool want_user = (i - first) % 2 == 0;
    const char* expected = want_user ? "user" : "assistant";
    if (role == "system") {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat: message ", i, " has role \"system\"; a system message is only allowed first"));
    }
    if (role != expected) {
      return absl::InvalidArgumentError(absl::StrCat("chat: message ", i, " has role \"", role,
                                                     "\"; expected \"", expected,
                                                     "\" (roles must alternate user/assistant)"));
    }
    if (i == first && has_system) {
      contents.push_back(absl::StrCat(kBSys, system, kESys, dialog[i].content));
    } else {
      contents.push_back(dialog[i].content);
    }
    index.push_back(i);
  }
  if (contents.size() % 2 == 0) {
    return absl::InvalidArgumentError(absl::StrCat("chat: the dialog ends with message ",
                                                   index.back(),
                                                   " from \"assistant\"; it must end with \"user\""));
  }

  std::vector<int> ids;
  for (size_t t = 0; t + 1 < contents.size(); t += 2) {
    Append(ids, tok.Encode(absl::StrCat(kBInst, " ", Strip(contents[t]), " ", kEInst, " ",
                                        Strip(contents[t + 1]), " "),
                           /*add_bos=*/true, /*add_eos=*/true));
  }
  Append(ids, tok.Encode(absl::StrCat(kBInst, " ", Strip(contents.back()), " ", kEInst),
                         /*add_bos=*/true, /*add_eos=*/false));
  return ids;
}

}  // namespace llama
