// Tokenizer against the fixture vectors (Llama 2 tokenizer) and the stories260K model;
// StreamDecoder against full decodes.
#include "engine/tokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

using ::llama::testing::FixturesDir;
using ::llama::testing::Llama2;
using ::llama::testing::ReadJson;

std::string LlamaTokDir() { return FixturesDir() + "/llama2-tokenizer"; }

const Tokenizer& Stories() {
  static const Tokenizer* tok =
      ::llama::testing::LoadTokenizerForever(FixturesDir() + "/stories260K-fp32/tokenizer.model");
  return *tok;
}

// Strict UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Streams `generated` after `prompt`, checking every step's output, and returns the
// concatenation (with Flush).
std::string StreamAll(const Tokenizer& tok, const std::vector<int>& prompt,
                      const std::vector<int>& generated) {
  StreamDecoder dec(&tok, prompt);
  std::string all;
  for (size_t i = 0; i < generated.size(); ++i) {
    const std::string piece = dec.Push(generated[i]);
    EXPECT_TRUE(IsValidUtf8(piece)) << "step " << i << " id " << generated[i];
    all += piece;
  }
  const std::string tail = dec.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  return all + tail;
}

// The text the generated ids add to the prompt in a full decode.
std::string ExpectedContinuation(const Tokenizer& tok, const std::vector<int>& prompt,
                                 const std::vector<int>& generated) {
  std::vector<int> all = prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  const std::string full = tok.Decode(all);
  const std::string head = tok.Decode(prompt);
  EXPECT_EQ(full.compare(0, head.size(), head), 0) << "prompt decode is not a prefix";
  return full.substr(head.size());
}

TEST(TokenizerTest, LoadsLlama2Model) {
  const nlohmann::json v = ReadJson(LlamaTokDir() + "/vectors.json");
  EXPECT_EQ(Llama2().vocab_size(), v["vocab_size"].get<int>());
  EXPECT_EQ(Llama2().bos_id(), v["bos_id"].get<int>());
  EXPECT_EQ(Llama2().eos_id(), v["eos_id"].get<int>());
}

TEST(TokenizerTest, LoadMissingFails) {
  auto t = Tokenizer::Load(FixturesDir() + "/no-such-dir");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no-such-dir"), std::string::npos) << t.status();
  // A file that is not a sentencepiece model.
  auto bad = Tokenizer::Load(FixturesDir() + "/README.md");
  EXPECT_FALSE(bad.ok());
}

TEST(TokenizerTest, EncodeMatchesVectors) {
  const nlohmann::json v = ReadJson(LlamaTokDir() + "/vectors.json");
  ASSERT_GT(v["cases"].size(), 10u);
  for (const auto& c : v["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(Llama2().Encode(text), c["ids"].get<std::vector<int>>()) << "text: " << text;
  }
}

TEST(TokenizerTest, DecodeMatchesVectors) {
  const nlohmann::json v = ReadJson(LlamaTokDir() + "/vectors.json");
  for (const auto& c : v["cases"]) {
    const std::vector<int> ids = c["ids"];
    EXPECT_EQ(Llama2().Decode(ids), c["decoded"].get<std::string>()) << "text: " << c["text"];
  }
}

TEST(TokenizerTest, BosEosFlagsAndControlIdsDropped) {
  const std::vector<int> plain = Llama2().Encode("Hello world");
  std::vector<int> with = plain;
  with.insert(with.begin(), 1);
  with.push_back(2);
  EXPECT_EQ(Llama2().Encode("Hello world", true, true), with);
  EXPECT_EQ(Llama2().Decode(with), "Hello world");
}

TEST(TokenizerTest, LiteralSpecialTokenTextIsNotBos) {
  const std::vector<int> ids = Llama2().Encode("<s>");
  EXPECT_FALSE(ids.empty());
  for (int id : ids) {
    EXPECT_NE(id, Llama2().bos_id());
    EXPECT_NE(id, Llama2().eos_id());
  }
  EXPECT_EQ(Llama2().Decode(ids), "<s>");
}

TEST(TokenizerTest, StoriesRoundTrips) {
  const Tokenizer& tok = Stories();
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  for (const std::string text :
       {"Once upon a time, there was a little girl named Lily.", "Hello world",
        "line one\nline two", "caf\xC3\xA9 \xF0\x9F\xA6\x99 \xE6\x97\xA5\xE6\x9C\xAC", "x"}) {
    const std::vector<int> ids = tok.Encode(text);
    for (int id : ids) EXPECT_LT(id, 512);
    EXPECT_EQ(tok.Decode(ids), text);
  }
  // The fixture's greedy text decodes from its ids.
  const auto& ref = ::llama::testing::References()["fp32"];
  EXPECT_EQ(tok.Decode(ref["greedy_from_bos_64"].get<std::vector<int>>()),
            ref["greedy_from_bos_64_text"].get<std::string>());
}

TEST(StreamDecoderTest, FixtureGreedySequencesConcatenateToDecode) {
  const auto& refs = ::llama::testing::References();
  for (const std::string model : {"fp32", "main"}) {
    for (const auto& [key, prompt_len] :
         std::vector<std::pair<std::string, size_t>>{{"greedy_from_bos_64", 1},
                                                      {"greedy_once_upon_a_time_32", 5}}) {
      const std::vector<int> all = refs[model][key];
      const std::vector<int> prompt(all.begin(), all.begin() + prompt_len);
      const std::vector<int> gen(all.begin() + prompt_len, all.end());
      const std::string streamed = StreamAll(Stories(), prompt, gen);
      EXPECT_EQ(streamed, ExpectedContinuation(Stories(), prompt, gen)) << model << " " << key;
      EXPECT_EQ(Stories().Decode(prompt) + streamed, refs[model][key + "_text"].get<std::string>());
    }
  }
}

TEST(StreamDecoderTest, NoPromptEqualsDecodeOfGenerated) {
  const std::vector<int> ids = Llama2().Encode("Hello world, h\xC3\xA9llo \xF0\x9F\xA6\x99!");
  EXPECT_EQ(StreamAll(Llama2(), {}, ids), Llama2().Decode(ids));
  EXPECT_EQ(StreamAll(Llama2(), {1}, ids), Llama2().Decode(ids));
}

TEST(StreamDecoderTest, VectorsStreamWithAndWithoutPrompt) {
  const nlohmann::json v = ReadJson(LlamaTokDir() + "/vectors.json");
  const std::vector<std::vector<int>> prompts = {
      {}, {1}, Llama2().Encode("[INST] Hi [/INST]", true), Llama2().Encode("x \xF0\x9F\xA6\x99", true)};
  for (const auto& c : v["cases"]) {
    const std::vector<int> ids = c["ids"];
    for (const auto& prompt : prompts) {
      EXPECT_EQ(StreamAll(Llama2(), prompt, ids), ExpectedContinuation(Llama2(), prompt, ids))
          << "text: " << c["text"] << " prompt size " << prompt.size();
    }
  }
}

TEST(StreamDecoderTest, HoldsIncompleteMultiByteCharacters) {
  // "🦙" is four byte-fallback pieces in the Llama vocabulary (vectors.json).
  const std::vector<int> llama_emoji = {243, 162, 169, 156};
  ASSERT_EQ(Llama2().Decode(llama_emoji), "\xF0\x9F\xA6\x99");
  StreamDecoder dec(&Llama2(), {1, 15043});
  EXPECT_EQ(dec.Push(29871), " ");
  EXPECT_EQ(dec.Push(243), "");
  EXPECT_EQ(dec.Push(162), "");
  EXPECT_EQ(dec.Push(169), "");
  EXPECT_EQ(dec.Push(156), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(dec.Push(3186), " world");
  EXPECT_EQ(dec.Flush(), "");
}

TEST(StreamDecoderTest, FlushEmitsIncompleteTailAsReplacement) {
  StreamDecoder dec(&Llama2());
  EXPECT_EQ(dec.Push(15043), "Hello");
  EXPECT_EQ(dec.Push(243), "");
  EXPECT_EQ(dec.Push(162), "");
  const std::string tail = dec.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  EXPECT_EQ(tail, Llama2().Decode({15043, 243, 162}).substr(5));
  EXPECT_EQ(dec.Flush(), "");
}

TEST(StreamDecoderTest, InvalidByteRunsMatchFullDecode) {
  // Continuation bytes without a lead, a lead interrupted by a normal piece, a lead
  // followed by too many continuations: the stream still equals the full decode.
  const std::vector<std::vector<int>> cases = {
      {15043, 3 + 0x80, 3 + 0x80, 3 + 0x80, 3 + 0x80, 3 + 0x80, 3186},
      {3 + 0xF0, 3186, 3 + 0xE6, 3 + 0x97, 3 + 0xA5},
      {3 + 0x80, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99, 3 + 0x80},
      {3 + 0xC3, 3 + 0xA9, 3 + 0xA9, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99, 15043},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(StreamAll(Llama2(), {}, cases[i]), Llama2().Decode(cases[i])) << "case " << i;
    EXPECT_EQ(StreamAll(Llama2(), {1, 15043}, cases[i]),
              ExpectedContinuation(Llama2(), {1, 15043}, cases[i]))
        << "case " << i;
  }
}

TEST(StreamDecoderTest, LoneSpacePieceKeepsNextSpace) {
  // " leading space" = "▁", "▁leading", "▁space": the first "▁" is dropped at the start
  // only, so the stream must still yield " leading space".
  const std::vector<int> ids = {29871, 8236, 2913};
  EXPECT_EQ(StreamAll(Llama2(), {}, ids), Llama2().Decode(ids));
  EXPECT_EQ(StreamAll(Llama2(), {1}, ids), Llama2().Decode(ids));
}

}  // namespace
}  // namespace llama
