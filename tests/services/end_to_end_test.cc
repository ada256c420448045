// Must show 1: through gRPC, fetch + load all four stories260K branches from the local
// hub, then Generate and Chat on each; greedy output equals the engine reference.
#include <string>
#include <vector>

#include "engine/chat_format.h"
#include "engine/generate.h"
#include "engine/registry.h"
#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

using HealthStatus = grpc::health::v1::HealthCheckResponse;

class EndToEndTest : public SharedServerTest<EndToEndTest> {
 protected:
  static void SetUpTestSuite() {
    StartServer();
    if (HasFatalFailure()) return;
    for (const std::string& b : Branches()) {
      int progress = 0;
      grpc::Status s = server_->FetchAndLoad(b, &progress);
      ASSERT_TRUE(s.ok()) << b << ": " << s.error_message();
      EXPECT_GE(progress, 1) << b;
    }
    auto ctx = server_->Ctx(true);
    v1::SetDefaultVariantRequest req;
    req.set_name("main");
    v1::Variant v;
    ASSERT_TRUE(server_->admin().SetDefaultVariant(ctx.get(), req, &v).ok());
  }
};

TEST_F(EndToEndTest, AllFourBranchesAreReadyWithTheirQuantSettings) {
  auto ctx = server_->Ctx(true);
  v1::ListVariantsResponse list;
  ASSERT_TRUE(server_->admin().ListVariants(ctx.get(), {}, &list).ok());
  ASSERT_EQ(list.variants_size(), 4);
  EXPECT_EQ(list.default_variant(), "main");
  for (const v1::Variant& v : list.variants()) {
    SCOPED_TRACE(v.name());
    EXPECT_EQ(v.state(), v1::VARIANT_STATE_READY);
    EXPECT_EQ(v.state_name(), "ready");
    EXPECT_TRUE(v.serving());
    EXPECT_EQ(v.repo(), kRepo);
    EXPECT_EQ(v.branch(), v.name());
    EXPECT_EQ(v.commit().size(), 40u);
    EXPECT_TRUE(absl::StartsWith(v.snapshot_dir(), server_->cache_dir()));
    EXPECT_GT(v.memory_bytes(), 0u);
    EXPECT_FALSE(v.device().empty());
    ASSERT_TRUE(v.has_quant());
    EXPECT_EQ(v.quant().bits(), 4);
    int group = v.name() == "gptq-4bit-32g-actorder_True"   ? 32
                : v.name() == "gptq-4bit-64g-actorder_True" ? 64
                                                            : 128;
    EXPECT_EQ(v.quant().group_size(), group);
    EXPECT_EQ(v.quant().desc_act(), v.name() != "main");
    EXPECT_EQ(v.is_default(), v.name() == "main");
  }
}

TEST_F(EndToEndTest, GreedyGenerateEqualsReferenceOnEachBranch) {
  for (const std::string& b : Branches()) {
    SCOPED_TRACE(b);
    StreamResult r = Generate(*server_, GreedyRequest(b, 32));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, ReferenceContinuation(b));
    EXPECT_EQ(r.finish, v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(r.usage.prompt_tokens(), 5u);
    EXPECT_EQ(r.usage.completion_tokens(), 32u);
    EXPECT_EQ(r.variant, b);
    EXPECT_GE(r.chunks, 2);  // streamed, not one blob
    std::string want_text = References()[b]["greedy_once_upon_a_time_32_text"];
    EXPECT_EQ("Once upon a time" + r.text, want_text);
  }
}

TEST_F(EndToEndTest, TextPromptIsEncodedWithBos) {
  for (const std::string& b : Branches()) {
    SCOPED_TRACE(b);
    v1::GenerateRequest req;
    req.set_variant(b);
    req.set_prompt("Once upon a time");
    req.mutable_params()->set_max_new_tokens(32);
    StreamResult r = Generate(*server_, req);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, ReferenceContinuation(b));
  }
}

TEST_F(EndToEndTest, GreedyChatEqualsEngineOnEachBranch) {
  const std::vector<ChatMessage> dialog = {
      {"system", "You are a storyteller."},
      {"user", "Tell me about Lily."},
  };
  for (const std::string& b : Branches()) {
    SCOPED_TRACE(b);
    // The engine reference: the same checkpoint run in-process.
    RunnerOptions ro;
    ro.max_slots = 1;
    ro.threads = 1;
    absl::StatusOr<LoadedModel> m = LoadModelFromDir(FixtureDir(b), Backend::kCpu, ro);
    ASSERT_TRUE(m.ok()) << m.status();
    absl::StatusOr<std::vector<int>> prompt = EncodeLlama2Chat(*m->tokenizer, dialog);
    ASSERT_TRUE(prompt.ok()) << prompt.status();
    SamplingParams sp;
    sp.max_new_tokens = 24;
    absl::StatusOr<GenerateResult> want = llama::Generate(*m->runner, *m->tokenizer, *prompt, sp);
    ASSERT_TRUE(want.ok()) << want.status();

    v1::ChatRequest req;
    req.set_variant(b);
    for (const auto& msg : dialog) {
      auto* pm = req.add_messages();
      pm->set_role(msg.role);
      pm->set_content(msg.content);
    }
    req.mutable_params()->set_max_new_tokens(24);
    auto ctx = server_->Ctx();
    auto reader = server_->inference().Chat(ctx.get(), req);
    StreamResult r = ReadAll(reader);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, want->tokens);
    EXPECT_EQ(r.text, want->text);
    EXPECT_EQ(r.usage.prompt_tokens(), prompt->size());
  }
}

TEST_F(EndToEndTest, SamplingControlsReachTheEngine) {
  // Stop string: generation ends before "Lily" (the reference text has it), finish STOP.
  v1::GenerateRequest stop = GreedyRequest("main", 32);
  stop.mutable_params()->add_stop("Lily");
  StreamResult r = Generate(*server_, stop);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.finish, v1::FINISH_REASON_STOP);
  std::string full = References()["main"]["greedy_once_upon_a_time_32_text"];
  EXPECT_EQ("Once upon a time" + r.text, full.substr(0, full.find("Lily")));

  // Logprobs: one per token, each a log-probability.
  v1::GenerateRequest lp = GreedyRequest("main", 8);
  lp.mutable_params()->set_logprobs(true);
  auto ctx = server_->Ctx();
  auto reader = server_->inference().Generate(ctx.get(), lp);
  v1::GenerateResponse chunk;
  int tokens = 0, logprobs = 0;
  while (reader->Read(&chunk)) {
    tokens += chunk.token_ids_size();
    logprobs += chunk.logprobs_size();
    for (float v : chunk.logprobs()) EXPECT_LE(v, 0.0f);
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 8);
  EXPECT_EQ(logprobs, 8);

  // Seeded sampling: the same seed gives the same tokens.
  v1::GenerateRequest sampled = GreedyRequest("gptq-4bit-32g-actorder_True", 24);
  sampled.mutable_params()->set_temperature(1.0f);
  sampled.mutable_params()->set_top_p(0.9f);
  sampled.mutable_params()->set_seed(1234);
  StreamResult a = Generate(*server_, sampled);
  StreamResult b = Generate(*server_, sampled);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 24u);
}

TEST_F(EndToEndTest, TokenizeAndCountTokens) {
  auto ctx = server_->Ctx();
  v1::TokenizeRequest treq;
  treq.set_variant("gptq-4bit-32g-actorder_True");
  treq.set_text("Once upon a time");
  treq.set_add_bos(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(server_->inference().Tokenize(ctx.get(), treq, &tresp).ok());
  EXPECT_EQ(std::vector<int>(tresp.token_ids().begin(), tresp.token_ids().end()),
            kOnceUponATime);

  auto ctx2 = server_->Ctx();
  v1::CountTokensRequest creq;
  creq.set_text("Once upon a time");
  v1::CountTokensResponse cresp;
  ASSERT_TRUE(server_->inference().CountTokens(ctx2.get(), creq, &cresp).ok());
  EXPECT_EQ(cresp.count(), 5u);
  EXPECT_EQ(cresp.context_length(), 512u);
  EXPECT_EQ(cresp.variant(), "main");
}

TEST_F(EndToEndTest, HealthIsServingOverallAndPerVariant) {
  EXPECT_EQ(server_->Health(""), HealthStatus::SERVING);
  for (const std::string& b : Branches()) EXPECT_EQ(server_->Health(b), HealthStatus::SERVING) << b;
}

TEST_F(EndToEndTest, MetricsCountRequestsAndTokensPerVariant) {
  StreamResult r = Generate(*server_, GreedyRequest("gptq-4bit-64g-actorder_True", 8));
  ASSERT_TRUE(r.status.ok());
  std::string text = server_->MetricsText();
  EXPECT_NE(text.find("llama_requests_total{variant=\"gptq-4bit-64g-actorder_True\","
                      "method=\"Generate\",code=\"OK\"}"),
            std::string::npos);
  EXPECT_GE(server_->Metric("llama_generated_tokens_total", "gptq-4bit-64g-actorder_True"), 8);
  EXPECT_GE(server_->Metric("llama_time_to_first_token_seconds_count",
                            "gptq-4bit-64g-actorder_True"),
            1);
  EXPECT_NE(text.find("llama_variant_state{variant=\"main\",state=\"ready\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace llama::services::testing
