// Every fault the local hub can inject: the fetch either completes correctly (resuming
// without re-downloading bytes it already has) or fails with its specific error, and in
// no case is a partial or wrong file reachable under snapshots/.
#include "fetcher/fetcher.h"
#include "fetcher/hub_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_hub.h"

namespace llama::fetch::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kBranch[] = "gptq-4bit-32g-actorder_True";
constexpr char kModel[] = "model.safetensors";
constexpr char kModelBlob[] = "9d7388f73ecf177589a9f1f9a8c7f6dd39795df625384ad7c2e4e1c70903a2aa";

class FaultsTest : public HubFetchTest {
 protected:
  void SetUp() override {
    HubFetchTest::SetUp();
    if (HasFatalFailure()) return;
    opts_.backoff_initial_ms = 10;
    opts_.backoff_max_ms = 50;
    model_size_ = static_cast<int64_t>(fs::file_size(FixtureDir(kBranch) + "/" + kModel));
  }
  void TearDown() override {
    if (hub_) ExpectSnapshotsClean(opts_.cache_dir, *hub_);
  }
  // File bytes the CDN sent for the model across all requests (error bodies excluded).
  int64_t ModelBytesSent() {
    int64_t n = 0;
    for (const auto& e : hub_->Entries("cdn", kModel)) {
      if (e["status"] == 200 || e["status"] == 206) n += e["bytes_sent"].get<int64_t>();
    }
    return n;
  }
  bool ModelVisible() {
    return fs::exists(RepoDir(opts_.cache_dir) + "/snapshots/" + hub_->Commit(kBranch) + "/" +
                      kModel);
  }
  int64_t model_size_ = 0;
};

TEST_F(FaultsTest, DroppedConnectionResumesWithoutRedownloadingBytes) {
  hub_->SetFaults({{{"kind", "drop"}, {"match", kModel}, {"after_bytes", 100000},
                    {"where", {"cdn"}}, {"count", 2}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  auto gets = hub_->Entries("cdn", kModel);
  ASSERT_EQ(gets.size(), 3u);
  EXPECT_EQ(gets[0]["range"], nullptr);
  EXPECT_EQ(gets[0]["bytes_sent"], 100000);
  EXPECT_EQ(gets[1]["range"], "bytes=100000-");
  EXPECT_EQ(gets[1]["status"], 206);
  EXPECT_EQ(gets[1]["bytes_sent"], 100000);
  EXPECT_EQ(gets[2]["range"], "bytes=200000-");
  EXPECT_EQ(ModelBytesSent(), model_size_);  // no byte twice
}

TEST_F(FaultsTest, CorruptDownloadIsDetectedAndRetried) {
  hub_->SetFaults({{{"kind", "corrupt"}, {"match", kModel}, {"count", 1}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  auto gets = hub_->Entries("cdn", kModel);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["fault"], "corrupt");
  EXPECT_EQ(gets[1]["range"], nullptr);  // the corrupt bytes are thrown away
  EXPECT_EQ(ModelBytesSent(), 2 * model_size_);
}

TEST_F(FaultsTest, PersistentCorruptionFailsWithDataLossAndNothingVisible) {
  hub_->SetFaults({{{"kind", "corrupt"}, {"match", kModel}, {"count", -1}}});
  opts_.max_retries = 2;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(kModel));
  EXPECT_THAT(r.status().message(), HasSubstr(kBranch));
  EXPECT_THAT(r.status().message(), HasSubstr("sha256 mismatch"));
  EXPECT_EQ(hub_->Entries("cdn", kModel).size(), 3u);
  EXPECT_FALSE(ModelVisible());
  EXPECT_FALSE(fs::exists(RepoDir(opts_.cache_dir) + "/blobs/" + kModelBlob));
  EXPECT_FALSE(fs::exists(RepoDir(opts_.cache_dir) + "/refs/" + kBranch));
}

TEST_F(FaultsTest, RateLimitHonoursRetryAfterThenCompletes) {
  hub_->SetFaults({{{"kind", "status"}, {"code", 429}, {"retry_after", 1},
                    {"where", {"revision"}}, {"count", 1}},
                   {{"kind", "status"}, {"code", 429}, {"retry_after", 0},
                    {"where", {"cdn"}}, {"match", kModel}, {"count", 1}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  auto rev = hub_->Entries("revision");
  ASSERT_EQ(rev.size(), 2u);
  EXPECT_EQ(rev[0]["status"], 429);
  EXPECT_EQ(rev[1]["status"], 200);
  // Retry-After: 1 was honoured (the retry came at least ~1 s later).
  EXPECT_GE(rev[1]["t"].get<double>() - rev[0]["t"].get<double>(), 0.9);
  auto gets = hub_->Entries("cdn", kModel);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["status"], 429);
  EXPECT_EQ(gets[1]["status"], 200);
  EXPECT_EQ(ModelBytesSent(), model_size_);
}

TEST_F(FaultsTest, RateLimitExhaustedIsResourceExhausted) {
  hub_->SetFaults({{{"kind", "status"}, {"code", 429}, {"retry_after", 0},
                    {"where", {"cdn"}}, {"count", -1}}});
  opts_.max_retries = 2;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("429"));
  EXPECT_FALSE(ModelVisible());
}

TEST_F(FaultsTest, ServerErrorsAreRetriedWithBackoff) {
  hub_->SetFaults({{{"kind", "status"}, {"code", 500}, {"where", {"tree", "head", "cdn"}},
                    {"count", 3}},
                   {{"kind", "status"}, {"code", 503}, {"where", {"cdn"}}, {"count", 2}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  int errors = 0;
  for (const auto& e : hub_->Log()) errors += e["status"].get<int>() >= 500;
  EXPECT_EQ(errors, 5);
}

TEST_F(FaultsTest, PersistentServerErrorsFailAsUnavailable) {
  hub_->SetFaults({{{"kind", "status"}, {"code", 502}, {"where", {"tree"}}, {"count", -1}}});
  opts_.max_retries = 1;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("502"));
  EXPECT_THAT(r.status().message(), HasSubstr(kRepo));
}

TEST_F(FaultsTest, SlowTrickleCompletes) {
  hub_->SetFaults({{{"kind", "trickle"}, {"match", kModel}, {"bytes_per_sec", 400000},
                    {"count", -1}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  EXPECT_EQ(ModelBytesSent(), model_size_);
}

TEST_F(FaultsTest, StalledTransferTimesOutAndResumes) {
  // The CDN goes silent after 60000 bytes: the stall timeout aborts the request and the
  // retry resumes from what arrived.
  hub_->SetFaults({{{"kind", "stall"}, {"match", kModel}, {"after_bytes", 60000},
                    {"seconds", 20}, {"where", {"cdn"}}, {"count", 1}}});
  opts_.stall_timeout_s = 1;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  auto gets = hub_->Entries("cdn", kModel);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1]["range"], "bytes=60000-");
  EXPECT_EQ(ModelBytesSent(), model_size_);
}

TEST_F(FaultsTest, GatedRepoNeedsAToken) {
  absl::StatusOr<FetchResult> r = FetchRepo(kGatedRepo, "main", opts_);
  ASSERT_TRUE(absl::IsUnauthenticated(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("token is needed"));
  EXPECT_THAT(r.status().message(), HasSubstr(kGatedRepo));

  opts_.token = "hf_wrong";
  r = FetchRepo(kGatedRepo, "main", opts_);
  ASSERT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("lacks access"));
  EXPECT_FALSE(fs::exists(opts_.cache_dir + "/models--meta-llama--Llama-2-7b-chat-hf/snapshots"));

  hub_->ClearLog();
  opts_.token = kToken;
  r = FetchRepo(kGatedRepo, "main", opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, "main");
  // The token goes to the hub, never to the CDN on the other origin.
  int hub_requests = 0, cdn_requests = 0;
  for (const auto& e : hub_->Log()) {
    if (e["role"] == "cdn") {
      ++cdn_requests;
      EXPECT_FALSE(e["auth"].get<bool>()) << e.dump();
    } else {
      ++hub_requests;
      EXPECT_TRUE(e["auth"].get<bool>()) << e.dump();
    }
  }
  EXPECT_EQ(cdn_requests, 2);  // model.safetensors, tokenizer.model
  EXPECT_GT(hub_requests, 2);
}

TEST_F(FaultsTest, ListingThatEscapesTheRepoIsRejected) {
  hub_->SetFaults({{{"kind", "traversal"}, {"count", -1}}});
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("../"));
  EXPECT_THAT(r.status().message(), HasSubstr(kBranch));
  EXPECT_TRUE(hub_->Entries("head").empty());
  EXPECT_TRUE(hub_->Entries("cdn").empty());
  EXPECT_FALSE(fs::exists(RepoDir(opts_.cache_dir) + "/snapshots"));
  for (const auto& e : fs::recursive_directory_iterator(cache_.path())) {
    EXPECT_NE(e.path().filename(), "escaped.txt") << e.path();
  }
}

TEST_F(FaultsTest, StaleWrongPartialIsReplaced) {
  // A leftover .incomplete with wrong bytes: resumed, fails verification, re-downloaded.
  const std::string blobs = RepoDir(opts_.cache_dir) + "/blobs";
  fs::create_directories(blobs);
  {
    std::ofstream out(blobs + "/" + kModelBlob + ".incomplete", std::ios::binary);
    out << std::string(50000, 'x');
  }
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, kBranch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, kBranch);
  auto gets = hub_->Entries("cdn", kModel);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["range"], "bytes=50000-");
  EXPECT_EQ(gets[1]["range"], nullptr);
  EXPECT_FALSE(fs::exists(blobs + "/" + kModelBlob + ".incomplete"));
}

TEST_F(FaultsTest, HubErrorCodesMapToTypedErrors) {
  const std::string commit = hub_->Commit(kBranch);
  absl::StatusOr<FileMeta> m = HeadFile(opts_, kRepo, kBranch, commit, "missing.bin");
  ASSERT_TRUE(absl::IsNotFound(m.status())) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr("file 'missing.bin' not found"));
  EXPECT_THAT(m.status().message(), HasSubstr(kBranch));

  m = HeadFile(opts_, kRepo, kBranch, commit, kModel);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->etag, kModelBlob);
  EXPECT_EQ(m->size, model_size_);
  EXPECT_EQ(m->commit, commit);
  EXPECT_THAT(m->location, HasSubstr(":" + std::to_string(hub_->cdn_port()) + "/"));

  // The hub answers a range past the end with 416 and Content-Range: bytes */size.
  HttpResult h = HttpCall(
      "GET", m->location, "", {"Range: bytes=" + std::to_string(model_size_) + "-"});
  EXPECT_EQ(h.status, 416);

  HttpResponse resp;
  resp.status = 401;
  resp.headers["x-error-code"] = "RepoNotFound";
  EXPECT_TRUE(absl::IsNotFound(HubError(resp, {kRepo, "main", ""}, "u")));
  resp.headers.clear();
  EXPECT_TRUE(absl::IsUnauthenticated(HubError(resp, {kRepo, "main", ""}, "u")));
  resp.status = 403;
  EXPECT_TRUE(absl::IsPermissionDenied(HubError(resp, {kRepo, "main", ""}, "u")));
  resp.status = 416;
  EXPECT_TRUE(absl::IsOutOfRange(HubError(resp, {kRepo, "main", "f"}, "u")));
}

}  // namespace
}  // namespace llama::fetch::testing
