// Must show 4: every status of the error contract, each triggered through gRPC:
// NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
// DEADLINE_EXCEEDED, CANCELLED.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

using HealthStatus = grpc::health::v1::HealthCheckResponse;

class ErrorContractTest : public SharedServerTest<ErrorContractTest> {
 protected:
  static void SetUpTestSuite() {
    StartServer({"main"});
    if (HasFatalFailure()) return;
    ASSERT_TRUE(server_->manager().SetDefault("main").ok());
  }
};

TEST_F(ErrorContractTest, UnknownVariantIsNotFound) {
  StreamResult r = Generate(*server_, GreedyRequest("no-such-branch"));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(r.status.error_message().find("no-such-branch"), std::string::npos);

  auto ctx = server_->Ctx();
  ctx->AddMetadata("x-model-variant", "also-unknown");
  auto reader = server_->inference().Generate(ctx.get(), GreedyRequest(""));
  EXPECT_EQ(ReadAll(reader).status.error_code(), grpc::StatusCode::NOT_FOUND);

  auto actx = server_->Ctx(true);
  v1::GetVariantRequest req;
  req.set_name("no-such-branch");
  v1::Variant v;
  EXPECT_EQ(server_->admin().GetVariant(actx.get(), req, &v).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ErrorContractTest, LoadingABranchTheHubLacksIsNotFoundAndLeavesNothing) {
  auto ctx = server_->Ctx(true);
  v1::LoadVariantRequest req;
  req.set_name("gptq-8bit-no-such-branch");
  v1::Variant v;
  EXPECT_EQ(server_->admin().LoadVariant(ctx.get(), req, &v).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::IsNotFound(server_->manager().Get("gptq-8bit-no-such-branch").status()));
}

TEST_F(ErrorContractTest, KnownButNotReadyIsFailedPreconditionWithItsState) {
  // Registered (known) but never fetched: state absent.
  ASSERT_TRUE(server_->manager().Ensure("gptq-4bit-64g-actorder_True").ok());
  StreamResult r = Generate(*server_, GreedyRequest("gptq-4bit-64g-actorder_True"));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(r.status.error_message().find("absent"), std::string::npos)
      << r.status.error_message();
  // Fetched but not loaded.
  ASSERT_TRUE(server_->manager().Fetch("gptq-4bit-128g-actorder_True", "", "").ok());
  r = Generate(*server_, GreedyRequest("gptq-4bit-128g-actorder_True"));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(r.status.error_message().find("fetched"), std::string::npos)
      << r.status.error_message();
  EXPECT_EQ(server_->Health("gptq-4bit-128g-actorder_True"), HealthStatus::NOT_SERVING);
  // Admin: unloading what is not loaded.
  auto ctx = server_->Ctx(true);
  v1::UnloadVariantRequest req;
  req.set_name("gptq-4bit-128g-actorder_True");
  v1::Variant v;
  EXPECT_EQ(server_->admin().UnloadVariant(ctx.get(), req, &v).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ErrorContractTest, BadRequestsAreInvalidArgument) {
  // Prompt beyond the context (512 positions).
  v1::GenerateRequest longp = GreedyRequest("main");
  longp.clear_prompt_token_ids();
  longp.add_prompt_token_ids(1);
  for (int i = 0; i < 600; ++i) longp.add_prompt_token_ids(403);
  StreamResult r = Generate(*server_, longp);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.chunks, 0);
  // Out-of-range sampling parameters.
  v1::GenerateRequest badt = GreedyRequest("main");
  badt.mutable_params()->set_temperature(-1.0f);
  EXPECT_EQ(Generate(*server_, badt).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest badp = GreedyRequest("main");
  badp.mutable_params()->set_top_p(1.5f);
  EXPECT_EQ(Generate(*server_, badp).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Token id outside the vocabulary; empty prompt.
  v1::GenerateRequest badtok = GreedyRequest("main");
  badtok.add_prompt_token_ids(100000);
  EXPECT_EQ(Generate(*server_, badtok).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest empty;
  empty.set_variant("main");
  EXPECT_EQ(Generate(*server_, empty).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A dialog that does not end with a user turn.
  v1::ChatRequest chat;
  chat.set_variant("main");
  auto* m = chat.add_messages();
  m->set_role("assistant");
  m->set_content("hello");
  auto ctx = server_->Ctx();
  auto reader = server_->inference().Chat(ctx.get(), chat);
  EXPECT_EQ(ReadAll(reader).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ErrorContractTest, FullQueueIsResourceExhausted) {
  // One slot, one queue place, a slow decode: A runs, B waits, C is refused.
  ASSERT_TRUE(server_->LoadSlow("tight", absl::Milliseconds(20), /*max_slots=*/1,
                                /*max_queue=*/1)
                  .ok());
  v1::GenerateRequest long_req = GreedyRequest("tight", 400);
  auto ctx_a = server_->Ctx();
  auto a = server_->inference().Generate(ctx_a.get(), long_req);
  v1::GenerateResponse chunk;
  ASSERT_TRUE(a->Read(&chunk));  // A holds the slot
  auto ctx_b = server_->Ctx();
  auto b = server_->inference().Generate(ctx_b.get(), long_req);
  bool queued = false;
  for (int i = 0; i < 1000 && !queued; ++i) {
    queued = server_->Metric("llama_queue_depth", "tight") == 1;
    if (!queued) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(queued) << "B never queued";
  StreamResult c = Generate(*server_, long_req);
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << c.status.error_message();
  ctx_a->TryCancel();
  ctx_b->TryCancel();
  EXPECT_EQ(ReadAll(a).status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(ReadAll(b).status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(server_->WaitIdle("tight"));
  server_->manager().Unload("tight").IgnoreError();
}

TEST_F(ErrorContractTest, PassedDeadlineIsDeadlineExceededAndStopsGeneration) {
  ASSERT_TRUE(server_->LoadSlow("slow-deadline", absl::Milliseconds(20), 2, 8).ok());
  StreamResult r =
      Generate(*server_, GreedyRequest("slow-deadline", 400), absl::Milliseconds(300));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(r.tokens.size(), 400u);
  // The server stopped generating: nothing stays queued, running or streaming.
  EXPECT_TRUE(server_->WaitIdle("slow-deadline"));
  server_->manager().Unload("slow-deadline").IgnoreError();
}

TEST_F(ErrorContractTest, ClientCancelIsCancelledAndFreesTheSlot) {
  ASSERT_TRUE(server_->LoadSlow("slow-cancel", absl::Milliseconds(20), 2, 8).ok());
  auto ctx = server_->Ctx();
  auto reader = server_->inference().Generate(ctx.get(), GreedyRequest("slow-cancel", 400));
  v1::GenerateResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  ctx->TryCancel();
  StreamResult rest = ReadAll(reader);
  EXPECT_EQ(rest.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(server_->WaitIdle("slow-cancel"));
  // The freed slot serves the next request.
  StreamResult next = Generate(*server_, GreedyRequest("slow-cancel", 8));
  EXPECT_TRUE(next.status.ok()) << next.status.error_message();
  server_->manager().Unload("slow-cancel").IgnoreError();
}

TEST(AuthTest, MissingOrWrongTokenIsUnauthenticatedHealthIsOpen) {
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  ServerConfig cfg;
  cfg.inference_token = "infer-secret";
  cfg.admin_token = "admin-secret";
  TestServer server(hub, cfg);
  ASSERT_TRUE(server.start_status().ok());
  ASSERT_TRUE(server.FetchAndLoad("main").ok());  // with the admin token
  ASSERT_TRUE(server.manager().SetDefault("main").ok());

  auto call = [&](const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    auto reader = server.inference().Generate(&ctx, GreedyRequest("main"));
    return ReadAll(reader);
  };
  EXPECT_EQ(call("").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("wrong").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("admin-secret").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  StreamResult ok = call("infer-secret");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.tokens, ReferenceContinuation("main"));

  auto admin_list = [&](const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ListVariantsResponse resp;
    return server.admin().ListVariants(&ctx, {}, &resp);
  };
  EXPECT_EQ(admin_list("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(admin_list("infer-secret").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(admin_list("admin-secret").ok());
  // Health needs no token.
  EXPECT_EQ(server.Health(""), HealthStatus::SERVING);
  EXPECT_EQ(server.Health("main"), HealthStatus::SERVING);
}

}  // namespace
}  // namespace llama::services::testing
