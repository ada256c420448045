// Llama-2 chat prompt against the fixture dialogs (built by Meta's chat_completion) and
// role validation.
#include "engine/chat_format.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using ::llama::testing::FixturesDir;
using ::llama::testing::Llama2;
using ::llama::testing::ReadJson;

std::vector<ChatMessage> Dialog(const nlohmann::json& j) {
  std::vector<ChatMessage> d;
  for (const auto& m : j) d.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return d;
}

TEST(ChatFormatTest, MatchesAllFixtureDialogs) {
  const nlohmann::json v = ReadJson(FixturesDir() + "/llama2-tokenizer/chat_vectors.json");
  ASSERT_GE(v["cases"].size(), 4u);
  for (const auto& [name, c] : v["cases"].items()) {
    auto ids = EncodeLlama2Chat(Llama2(), Dialog(c["dialog"]));
    ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int>>()) << name;
  }
}

TEST(ChatFormatTest, StructureOfMultiTurnPrompt) {
  const std::vector<ChatMessage> d = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
  auto ids = EncodeLlama2Chat(Llama2(), d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  // BOS ... EOS BOS ... with no trailing EOS.
  EXPECT_EQ(ids->front(), Llama2().bos_id());
  EXPECT_NE(ids->back(), Llama2().eos_id());
  int bos = 0, eos = 0;
  for (int id : *ids) {
    bos += id == Llama2().bos_id();
    eos += id == Llama2().eos_id();
  }
  EXPECT_EQ(bos, 2);
  EXPECT_EQ(eos, 1);
  // Each finished pair ends with "b " and the next turn's first piece is "▁[": two spaces.
  EXPECT_EQ(Llama2().Decode(*ids), "[INST] a [/INST] b  [INST] c [/INST]");
}

TEST(ChatFormatTest, UnicodeWhitespaceIsStrippedLikePython) {
  // U+3000 (ideographic space) and U+00A0 are whitespace for Python's str.strip().
  const std::vector<ChatMessage> padded = {{"user", "\xE3\x80\x80\xC2\xA0hi there\t\n"}};
  const std::vector<ChatMessage> plain = {{"user", "hi there"}};
  auto a = EncodeLlama2Chat(Llama2(), padded);
  auto b = EncodeLlama2Chat(Llama2(), plain);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // Inner whitespace and non-space multi-byte characters are kept.
  auto c = EncodeLlama2Chat(Llama2(), {{"user", " \xE6\x97\xA5 \xE6\x9C\xAC "}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Llama2().Decode(*c), "[INST] \xE6\x97\xA5 \xE6\x9C\xAC [/INST]");
}

void ExpectInvalid(const std::vector<ChatMessage>& d, const std::string& needle) {
  auto r = EncodeLlama2Chat(Llama2(), d);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status();
}

TEST(ChatFormatTest, EmptyDialogIsInvalid) { ExpectInvalid({}, "no messages"); }

TEST(ChatFormatTest, EndingWithAssistantIsInvalid) {
  ExpectInvalid({{"user", "a"}, {"assistant", "b"}}, "must end with \"user\"");
  ExpectInvalid({{"system", "s"}, {"user", "a"}, {"assistant", "b"}}, "message 2");
}

TEST(ChatFormatTest, NonAlternatingRolesAreInvalid) {
  ExpectInvalid({{"user", "a"}, {"user", "b"}}, "message 1 has role \"user\"; expected \"assistant\"");
  ExpectInvalid({{"assistant", "a"}, {"user", "b"}}, "message 0 has role \"assistant\"; expected \"user\"");
  ExpectInvalid({{"system", "s"}, {"assistant", "a"}}, "message 1");
  ExpectInvalid({{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}, {"user", "d"}},
                "message 2");
  ExpectInvalid({{"user", "a"}, {"tool", "b"}, {"user", "c"}}, "\"tool\"");
}

TEST(ChatFormatTest, SystemNotFirstIsInvalid) {
  ExpectInvalid({{"user", "a"}, {"system", "s"}, {"user", "b"}}, "message 1 has role \"system\"");
  ExpectInvalid({{"system", "s"}, {"system", "t"}, {"user", "b"}}, "message 1");
  ExpectInvalid({{"system", "s"}}, "only a system message");
}

}  // namespace
}  // namespace llama
