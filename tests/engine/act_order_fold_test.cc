// FoldDownPermutation on the fixtures: down's act-order permutation moved into gate and up's
// output columns leaves the model's function untouched, bit for bit, on the CPU backend
// (every column and every down input is computed by the same operations as before).
#include "engine/act_order_fold.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/runner.h"
#include "engine/weights.h"
#include "gtest/gtest.h"
#include "tests/engine/test_fixtures.h"

namespace llama {
namespace {

std::shared_ptr<const ModelWeights> Load(const std::string& name) {
  auto w = LoadModelWeights(testing::ModelDir(name));
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? *w : nullptr;
}

// Logits of a prompt (every position) and of three decode steps after it.
std::vector<float> Logits(std::shared_ptr<const ModelWeights> w) {
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.threads = 2;
  auto r = CreateCpuRunner(w, opt);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  const int vocab = w->config.vocab_size;
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  std::vector<float> all(prompt.size() * vocab), step(vocab);
  EXPECT_TRUE((*r)->Prefill(0, 0, prompt, absl::MakeSpan(all), /*all_logits=*/true).ok());
  for (int pos = 5; pos < 8; ++pos) {
    const int slot = 0;
    const int32_t tok = 300 + pos;
    EXPECT_TRUE((*r)->Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                             absl::MakeConstSpan(&tok, 1), absl::MakeSpan(step)).ok());
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

class ActOrderFoldTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ActOrderFoldTest, SameLogitsBitForBit) {
  auto base = Load(GetParam());
  ASSERT_NE(base, nullptr);
  auto folded = std::make_shared<ModelWeights>(*base);
  int n = 0;
  for (LayerWeights& l : folded->layers) {
    const std::vector<int32_t> perm = l.w_down.gptq.perm;
    const GptqLinear gate = l.w_gate.gptq;
    ASSERT_TRUE(FoldDownPermutation(l.w_gate, l.w_up, l.w_down));
    ++n;
    EXPECT_TRUE(l.w_down.gptq.perm.empty());
    // Column j of the folded gate is column perm[j] of the original, at every row.
    for (int k : {0, gate.K / 2, gate.K - 1})
      for (int j : {0, 7, gate.N - 1}) EXPECT_EQ(l.w_gate.gptq.At(k, j), gate.At(k, perm[j])) << k << " " << j;
  }
  ASSERT_GT(n, 0);
  const std::vector<float> want = Logits(base), got = Logits(folded);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(ActOrderBranches, ActOrderFoldTest,
                         ::testing::Values("gptq-4bit-32g-actorder_True", "gptq-4bit-64g-actorder_True",
                                           "gptq-4bit-128g-actorder_True"),
                         [](const auto& i) {
                           std::string s = i.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(ActOrderFoldTest, LeavesLayersWithoutPermutationAlone) {
  auto base = Load("main");
  ASSERT_NE(base, nullptr);
  ModelWeights w = *base;
  for (LayerWeights& l : w.layers) EXPECT_FALSE(FoldDownPermutation(l.w_gate, l.w_up, l.w_down));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    EXPECT_EQ(w.layers[i].w_gate.gptq.qweight, base->layers[i].w_gate.gptq.qweight);
    EXPECT_EQ(w.layers[i].w_up.gptq.scales, base->layers[i].w_up.gptq.scales);
  }
}

TEST(ActOrderFoldTest, RefusesAShapeMismatchOrABrokenPermutation) {
  auto base = Load("gptq-4bit-128g-actorder_True");
  ASSERT_NE(base, nullptr);
  LayerWeights l = base->layers[0];
  Linear gate = l.w_gate;
  gate.N -= 4;  // no longer one output per down input
  EXPECT_FALSE(FoldDownPermutation(gate, l.w_up, l.w_down));
  LayerWeights bad = base->layers[0];
  bad.w_down.gptq.perm[0] = bad.w_down.gptq.perm[1];  // not a permutation
  EXPECT_FALSE(FoldDownPermutation(bad.w_gate, bad.w_up, bad.w_down));
  EXPECT_EQ(bad.w_gate.gptq.qweight, base->layers[0].w_gate.gptq.qweight);
  EXPECT_FALSE(bad.w_down.gptq.perm.empty());
}

}  // namespace
}  // namespace llama
