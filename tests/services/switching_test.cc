// Must show 2: switching at run time. Set default (and routing by field and metadata);
// unload a variant while streams run — on it and on another — and they finish intact;
// a load that fails (corrupt file) leaves the old state serving.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

using HealthStatus = grpc::health::v1::HealthCheckResponse;

class SwitchingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    branches_ = Hub::FixtureBranches();
    corrupt_dir_ = MakeCorruptCopy(tmp_.path());
    branches_["corrupt"] = corrupt_dir_;
    hub_ = std::make_unique<Hub>(branches_);
    ASSERT_TRUE(hub_->ok());
    server_ = std::make_unique<TestServer>(*hub_);
    ASSERT_TRUE(server_->start_status().ok()) << server_->start_status();
    for (const char* b : {"main", "gptq-4bit-32g-actorder_True"}) {
      grpc::Status s = server_->FetchAndLoad(b);
      ASSERT_TRUE(s.ok()) << b << ": " << s.error_message();
    }
  }
  void TearDown() override {
    server_.reset();
    hub_.reset();
  }

  grpc::Status SetDefault(const std::string& name) {
    auto ctx = server_->Ctx(true);
    v1::SetDefaultVariantRequest req;
    req.set_name(name);
    v1::Variant v;
    return server_->admin().SetDefaultVariant(ctx.get(), req, &v);
  }
  absl::StatusOr<v1::Variant> Get(const std::string& name) {
    auto ctx = server_->Ctx(true);
    v1::GetVariantRequest req;
    req.set_name(name);
    v1::Variant v;
    grpc::Status s = server_->admin().GetVariant(ctx.get(), req, &v);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), "");
    return v;
  }

  TempDir tmp_;
  std::map<std::string, std::string> branches_;
  std::string corrupt_dir_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(SwitchingTest, SetDefaultRoutesRequestsWithoutAVariant) {
  ASSERT_TRUE(SetDefault("main").ok());
  EXPECT_EQ(server_->Health(""), HealthStatus::SERVING);
  StreamResult r = Generate(*server_, GreedyRequest(""));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.variant, "main");
  EXPECT_EQ(r.tokens, ReferenceContinuation("main"));

  ASSERT_TRUE(SetDefault("gptq-4bit-32g-actorder_True").ok());
  r = Generate(*server_, GreedyRequest(""));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.variant, "gptq-4bit-32g-actorder_True");
  EXPECT_EQ(r.tokens, ReferenceContinuation("gptq-4bit-32g-actorder_True"));

  // Metadata x-model-variant routes when the field is empty; the field wins over it.
  {
    auto ctx = server_->Ctx();
    ctx->AddMetadata("x-model-variant", "main");
    auto reader = server_->inference().Generate(ctx.get(), GreedyRequest(""));
    StreamResult m = ReadAll(reader);
    ASSERT_TRUE(m.status.ok());
    EXPECT_EQ(m.variant, "main");
    EXPECT_EQ(m.tokens, ReferenceContinuation("main"));
  }
  {
    auto ctx = server_->Ctx();
    ctx->AddMetadata("x-model-variant", "main");
    auto reader =
        server_->inference().Generate(ctx.get(), GreedyRequest("gptq-4bit-32g-actorder_True"));
    StreamResult m = ReadAll(reader);
    ASSERT_TRUE(m.status.ok());
    EXPECT_EQ(m.variant, "gptq-4bit-32g-actorder_True");
  }
  EXPECT_EQ(SetDefault("no-such-variant").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SwitchingTest, UnloadWhileStreamsRunLetsThemFinishIntact) {
  // "slow" serves the main checkpoint with a pause per decode step, so its streams are
  // surely mid-flight when the unloads happen.
  ASSERT_TRUE(server_->LoadSlow("slow", absl::Milliseconds(15), 4, 16).ok());
  constexpr int kStreams = 4;
  constexpr int kTokens = 128;  // ~2 s of decoding each: surely running during the unloads
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> readers;
  std::vector<StreamResult> results(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    ctxs.push_back(server_->Ctx());
    readers.push_back(
        server_->inference().Generate(ctxs.back().get(), GreedyRequest("slow", kTokens)));
  }
  // Every stream has produced its first chunk: all are running.
  for (int i = 0; i < kStreams; ++i) {
    v1::GenerateResponse chunk;
    ASSERT_TRUE(readers[i]->Read(&chunk));
    results[i].tokens.assign(chunk.token_ids().begin(), chunk.token_ids().end());
  }
  // Unload another variant, and the very variant the streams run on.
  auto unload = [&](const std::string& name) {
    auto ctx = server_->Ctx(true);
    v1::UnloadVariantRequest req;
    req.set_name(name);
    v1::Variant v;
    return server_->admin().UnloadVariant(ctx.get(), req, &v);
  };
  ASSERT_TRUE(unload("gptq-4bit-32g-actorder_True").ok());
  ASSERT_TRUE(unload("slow").ok());
  // New requests to them are refused at once with their state...
  StreamResult refused = Generate(*server_, GreedyRequest("slow"));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  StreamResult refused2 = Generate(*server_, GreedyRequest("gptq-4bit-32g-actorder_True"));
  EXPECT_EQ(refused2.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused2.status.error_message().find("fetched"), std::string::npos)
      << refused2.status.error_message();
  // ... while the running streams complete with the reference tokens.
  for (int i = 0; i < kStreams; ++i) {
    StreamResult rest = ReadAll(readers[i]);
    ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
    results[i].tokens.insert(results[i].tokens.end(), rest.tokens.begin(), rest.tokens.end());
    ASSERT_EQ(results[i].tokens.size(), static_cast<size_t>(kTokens)) << "stream " << i;
    std::vector<int> want = ReferenceContinuation("main");
    EXPECT_TRUE(std::equal(want.begin(), want.end(), results[i].tokens.begin()))
        << "stream " << i;
    EXPECT_EQ(rest.finish, v1::FINISH_REASON_LENGTH);
  }
  // main was never touched.
  StreamResult m = Generate(*server_, GreedyRequest("main"));
  ASSERT_TRUE(m.status.ok());
  EXPECT_EQ(m.tokens, ReferenceContinuation("main"));
  EXPECT_EQ(server_->Health("gptq-4bit-32g-actorder_True"), HealthStatus::NOT_SERVING);
  // An unloaded variant loads again.
  auto ctx = server_->Ctx(true);
  v1::LoadVariantRequest lreq;
  lreq.set_name("gptq-4bit-32g-actorder_True");
  v1::Variant v;
  ASSERT_TRUE(server_->admin().LoadVariant(ctx.get(), lreq, &v).ok());
  EXPECT_EQ(v.state(), v1::VARIANT_STATE_READY);
  EXPECT_EQ(server_->Health("gptq-4bit-32g-actorder_True"), HealthStatus::SERVING);
}

TEST_F(SwitchingTest, FailedLoadOfCorruptCopyLeavesOldStateServing) {
  absl::StatusOr<v1::Variant> before = Get("main");
  ASSERT_TRUE(before.ok());
  // A corrupt checkpoint loaded as a new copy of a ready variant: refused, old copy serves.
  absl::Status s = server_->manager().registry().Load(
      "main", corrupt_dir_, "corrupt-commit", Backend::kCpu, RunnerOptions{},
      server_->manager().SchedulerOptionsFor("main"));
  EXPECT_FALSE(s.ok());
  absl::StatusOr<v1::Variant> after = Get("main");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), v1::VARIANT_STATE_READY);
  EXPECT_TRUE(after->serving());
  EXPECT_EQ(after->commit(), before->commit());
  EXPECT_FALSE(after->error().empty());
  StreamResult r = Generate(*server_, GreedyRequest("main"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ReferenceContinuation("main"));

  // A corrupt branch fetched from the hub and loaded through the Admin RPC: the load
  // fails with its reason, the variant is failed, every other variant still serves.
  grpc::Status load = server_->FetchAndLoad("corrupt");
  EXPECT_FALSE(load.ok());
  absl::StatusOr<v1::Variant> corrupt = Get("corrupt");
  ASSERT_TRUE(corrupt.ok());
  EXPECT_EQ(corrupt->state(), v1::VARIANT_STATE_FAILED);
  EXPECT_FALSE(corrupt->error().empty());
  StreamResult c = Generate(*server_, GreedyRequest("corrupt"));
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  for (const char* b : {"main", "gptq-4bit-32g-actorder_True"}) {
    StreamResult ok = Generate(*server_, GreedyRequest(b));
    ASSERT_TRUE(ok.status.ok()) << b;
    EXPECT_EQ(ok.tokens, ReferenceContinuation(b)) << b;
  }
}

TEST_F(SwitchingTest, DeleteRefusesWhileLoadedThenRemovesFiles) {
  auto del = [&](const std::string& name) {
    auto ctx = server_->Ctx(true);
    v1::DeleteVariantRequest req;
    req.set_name(name);
    v1::DeleteVariantResponse resp;
    return server_->admin().DeleteVariant(ctx.get(), req, &resp);
  };
  EXPECT_EQ(del("main").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  absl::StatusOr<v1::Variant> v = Get("gptq-4bit-32g-actorder_True");
  ASSERT_TRUE(v.ok());
  std::string snapshot = v->snapshot_dir();
  ASSERT_TRUE(fs::exists(snapshot));
  {
    auto ctx = server_->Ctx(true);
    v1::UnloadVariantRequest req;
    req.set_name("gptq-4bit-32g-actorder_True");
    v1::Variant out;
    ASSERT_TRUE(server_->admin().UnloadVariant(ctx.get(), req, &out).ok());
  }
  // Unloading finishes once no stream holds it (none here); bounded wait for the state.
  for (int i = 0; i < 500; ++i) {
    v = Get("gptq-4bit-32g-actorder_True");
    if (v.ok() && v->state() == v1::VARIANT_STATE_FETCHED) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(del("gptq-4bit-32g-actorder_True").ok());
  EXPECT_FALSE(fs::exists(snapshot));
  v = Get("gptq-4bit-32g-actorder_True");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->state(), v1::VARIANT_STATE_ABSENT);
}

}  // namespace
}  // namespace llama::services::testing
