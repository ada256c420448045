// Fetching the four fixture branches from the local hub: contents, refs, the official
// cache layout, pagination, patterns, concurrency, progress and deletion.
#include <thread>

#include "fetcher/fetcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_hub.h"

namespace llama::fetch::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class FetchTest : public HubFetchTest {
 protected:
  void SetUp() override {
    HubFetchTest::SetUp();
    opts_.backoff_initial_ms = 10;
  }
};

TEST_F(FetchTest, EachBranchIsByteIdenticalAndRefHoldsHubCommit) {
  for (const auto& branch : Branches()) {
    SCOPED_TRACE(branch);
    absl::StatusOr<FetchResult> r = FetchRepo(kRepo, branch, opts_);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->commit, hub_->Commit(branch));
    EXPECT_EQ(r->revision, branch);
    EXPECT_EQ(r->files, 7);
    EXPECT_EQ(r->snapshot_dir, RepoDir(opts_.cache_dir) + "/snapshots/" + r->commit);
    ExpectSnapshotMatchesFixture(r->snapshot_dir, branch);
    EXPECT_EQ(ReadFile(RepoDir(opts_.cache_dir) + "/refs/" + branch), hub_->Commit(branch));
  }
  // tokenizer.model is identical in all branches: one blob, downloaded once.
  EXPECT_EQ(hub_->Entries("cdn", "tokenizer.model").size(), 1u);
  ExpectSnapshotsClean(opts_.cache_dir, *hub_);
}

// The exact layout huggingface_hub's snapshot_download produces and reads.
TEST_F(FetchTest, OfficialHuggingfaceHubCacheLayout) {
  const std::string branch = "main";
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, branch, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string repo = opts_.cache_dir + "/models--TheBloke--Llama-2-7b-Chat-GPTQ";
  const std::string commit = hub_->Commit(branch);
  // refs/main: the 40-hex commit, no trailing newline.
  std::string ref = ReadFile(repo + "/refs/main");
  EXPECT_EQ(ref.size(), 40u);
  EXPECT_EQ(ref, commit);
  // Blob names: sha256 for LFS files (fixtures README), git blob sha1 for small files
  // (as listed by the hub's tree API).
  nlohmann::json tree = nlohmann::json::parse(
      HttpCall("GET", hub_->endpoint() + "/api/models/" + kRepo + "/tree/" + commit +
                                   "?recursive=true")
          .body);
  std::map<std::string, std::string> want_target;
  for (const auto& e : tree) {
    std::string etag = e.contains("lfs") ? e["lfs"]["oid"].get<std::string>()
                                         : e["oid"].get<std::string>();
    want_target[e["path"]] = "../../blobs/" + etag;
  }
  EXPECT_EQ(want_target["model.safetensors"],
            "../../blobs/ceda1442b55922b878f5e8d6162177d13826de7c66429824a85226953b836255");
  EXPECT_EQ(want_target["tokenizer.model"],
            "../../blobs/fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3");
  ASSERT_EQ(want_target.size(), 7u);
  std::set<std::string> blobs;
  for (const auto& [path, target] : want_target) {
    fs::path link = fs::path(repo) / "snapshots" / commit / path;
    ASSERT_TRUE(fs::is_symlink(fs::symlink_status(link))) << link;
    EXPECT_EQ(fs::read_symlink(link).string(), target) << path;
    blobs.insert(fs::path(target).filename().string());
  }
  // Top level and blobs/: exactly these entries (no leftovers such as .incomplete).
  std::set<std::string> top, got_blobs, refs;
  for (const auto& e : fs::directory_iterator(repo)) top.insert(e.path().filename().string());
  EXPECT_EQ(top, (std::set<std::string>{"blobs", "refs", "snapshots"}));
  for (const auto& e : fs::directory_iterator(repo + "/blobs")) {
    got_blobs.insert(e.path().filename().string());
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(e.path())));
  }
  EXPECT_EQ(got_blobs, blobs);
  for (const auto& e : fs::directory_iterator(repo + "/refs")) {
    refs.insert(e.path().filename().string());
  }
  EXPECT_EQ(refs, (std::set<std::string>{"main"}));
  EXPECT_TRUE(fs::is_directory(opts_.cache_dir + "/.locks/models--TheBloke--Llama-2-7b-Chat-GPTQ"));
}

TEST_F(FetchTest, BranchNameWithSlashIsPercentEncodedAndNotFoundIsTyped) {
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, "refs/pr/1", opts_);
  ASSERT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("revision 'refs/pr/1'"));
  EXPECT_THAT(r.status().message(), HasSubstr(kRepo));
  auto rev = hub_->Entries("revision");
  ASSERT_EQ(rev.size(), 1u);
  EXPECT_THAT(rev[0]["path"].get<std::string>(), HasSubstr("/revision/refs%2Fpr%2F1"));

  r = FetchRepo("TheBloke/No-Such-Repo", "main", opts_);
  ASSERT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("TheBloke/No-Such-Repo"));
  EXPECT_FALSE(fs::exists(opts_.cache_dir + "/models--TheBloke--No-Such-Repo/snapshots"));
}

TEST_F(FetchTest, PaginatedTreeListingIsFollowed) {
  hub_->SetFaults(nlohmann::json::array(), /*page_size=*/2);
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, "gptq-4bit-64g-actorder_True", opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, "gptq-4bit-64g-actorder_True");
  EXPECT_EQ(hub_->Entries("tree").size(), 4u);  // 7 files, 2 per page
}

TEST_F(FetchTest, CommitRevisionSkipsRevisionApiAndWritesNoRef) {
  const std::string commit = hub_->Commit("gptq-4bit-128g-actorder_True");
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, commit, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSnapshotMatchesFixture(r->snapshot_dir, "gptq-4bit-128g-actorder_True");
  EXPECT_TRUE(hub_->Entries("revision").empty());
  EXPECT_FALSE(fs::exists(RepoDir(opts_.cache_dir) + "/refs/" + commit));
}

TEST_F(FetchTest, AllowAndIgnorePatterns) {
  opts_.allow_patterns = {"*.json", "tokenizer.*"};
  opts_.ignore_patterns = {"generation_*"};
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, "main", opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  std::set<std::string> got;
  for (const auto& e : fs::directory_iterator(r->snapshot_dir)) {
    got.insert(e.path().filename().string());
  }
  EXPECT_EQ(got, (std::set<std::string>{"config.json", "quantize_config.json",
                                        "special_tokens_map.json", "tokenizer.model",
                                        "tokenizer_config.json"}));
  EXPECT_TRUE(hub_->Entries("cdn", "model.safetensors").empty());
  EXPECT_EQ(r->files, 5);
}

TEST_F(FetchTest, TwoConcurrentFetchersOfTheSameRepoShareTheCacheSafely) {
  hub_->SetFaults({{{"kind", "trickle"}, {"match", "model.safetensors"},
                    {"bytes_per_sec", 1000000}, {"count", -1}}});
  absl::StatusOr<FetchResult> a, b;
  std::thread t1([&] { a = FetchRepo(kRepo, "main", opts_); });
  std::thread t2([&] { b = FetchRepo(kRepo, "main", opts_); });
  t1.join();
  t2.join();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->snapshot_dir, b->snapshot_dir);
  ExpectSnapshotMatchesFixture(a->snapshot_dir, "main");
  // The per-blob lock makes the second fetcher reuse the first one's blob.
  EXPECT_EQ(hub_->Entries("cdn", "model.safetensors").size(), 1u);
}

TEST_F(FetchTest, ProgressReportsPerFileAndOverallTotals) {
  std::vector<Progress> seen;
  opts_.on_progress = [&seen](const Progress& p) { seen.push_back(p); };
  opts_.parallel = 2;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, "gptq-4bit-32g-actorder_True", opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(seen.empty());
  const Progress& last = seen.back();
  int64_t total = 0;
  for (const auto& e : fs::directory_iterator(FixtureDir("gptq-4bit-32g-actorder_True"))) {
    total += static_cast<int64_t>(fs::file_size(e.path()));
  }
  EXPECT_EQ(last.total, total);
  EXPECT_EQ(last.done, total);
  EXPECT_EQ(last.files_total, 7);
  EXPECT_EQ(last.files_done, 7);
  ASSERT_EQ(last.files.size(), 7u);
  for (const auto& f : last.files) EXPECT_EQ(f.done, f.total) << f.path;
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].done, seen[i - 1].done);
  EXPECT_EQ(r->bytes_downloaded, total);
}

TEST_F(FetchTest, DeleteRevisionKeepsBlobsOtherSnapshotsUse) {
  ASSERT_TRUE(FetchRepo(kRepo, "main", opts_).ok());
  absl::StatusOr<FetchResult> b = FetchRepo(kRepo, "gptq-4bit-32g-actorder_True", opts_);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string repo = RepoDir(opts_.cache_dir);
  const std::string shared = repo + "/blobs/fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3";
  const std::string own = repo + "/blobs/9d7388f73ecf177589a9f1f9a8c7f6dd39795df625384ad7c2e4e1c70903a2aa";
  ASSERT_TRUE(fs::exists(own));
  ASSERT_TRUE(DeleteRevision(kRepo, "gptq-4bit-32g-actorder_True", opts_).ok());
  EXPECT_FALSE(fs::exists(b->snapshot_dir));
  EXPECT_FALSE(fs::exists(repo + "/refs/gptq-4bit-32g-actorder_True"));
  EXPECT_FALSE(fs::exists(own));
  EXPECT_TRUE(fs::exists(shared));  // main's tokenizer.model
  absl::StatusOr<FetchResult> main = CachedSnapshot(kRepo, "main", opts_);
  ASSERT_TRUE(main.ok()) << main.status();
  ExpectSnapshotMatchesFixture(main->snapshot_dir, "main");
  EXPECT_TRUE(absl::IsNotFound(CachedSnapshot(kRepo, "gptq-4bit-32g-actorder_True", opts_).status()));
  EXPECT_TRUE(absl::IsNotFound(DeleteRevision(kRepo, "gptq-4bit-32g-actorder_True", opts_)));
}

TEST_F(FetchTest, CancelStopsTheFetchAndLeavesNothingUnverifiedVisible) {
  hub_->SetFaults({{{"kind", "trickle"}, {"match", "model.safetensors"},
                    {"bytes_per_sec", 20000}, {"count", -1}}});
  std::atomic<bool> cancel{false};
  opts_.cancel = &cancel;
  opts_.on_progress = [&cancel](const Progress& p) {
    if (p.done > 50000) cancel.store(true);
  };
  opts_.progress_interval_ms = 0;
  absl::StatusOr<FetchResult> r = FetchRepo(kRepo, "main", opts_);
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_FALSE(fs::exists(RepoDir(opts_.cache_dir) + "/refs/main"));
  ExpectSnapshotsClean(opts_.cache_dir, *hub_);
}

}  // namespace
}  // namespace llama::fetch::testing
