// Test helpers: starts tests/hub/hub.py on loopback serving the fixture branches, talks to
// its control endpoints, and checks snapshot contents against the fixtures.
#ifndef LLAMA_TESTS_FETCHER_TEST_HUB_H_
#define LLAMA_TESTS_FETCHER_TEST_HUB_H_

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fetcher/fetcher.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/hub_process.h"

namespace llama::fetch::testing {

namespace fs = std::filesystem;

using ::llama::testing::Branches;
using ::llama::testing::kRepo;
using ::llama::testing::ReadFile;
inline constexpr char kGatedRepo[] = "meta-llama/Llama-2-7b-chat-hf";
inline constexpr char kToken[] = "hf_test_token";
inline std::string FixtureDir(const std::string& branch) {
  return std::string(LLAMA_FIXTURES_DIR) + "/stories260K-GPTQ/" + branch;
}

// A fresh temp dir (fetcher_test_XXXXXX), removed on destruction.
class TempDir : public ::llama::testing::TempDir {
 public:
  TempDir() : ::llama::testing::TempDir("fetcher_test") {}
};

struct HttpResult {
  long status = 0;
  std::string body;
};

inline size_t CollectBody(char* d, size_t s, size_t n, void* u) {
  static_cast<std::string*>(u)->append(d, s * n);
  return s * n;
}

inline HttpResult HttpCall(const std::string& method, const std::string& url,
                           const std::string& body = "",
                           const std::vector<std::string>& headers = {}) {
  HttpResult r;
  CURL* h = curl_easy_init();
  struct curl_slist* hs = nullptr;
  for (const auto& x : headers) hs = curl_slist_append(hs, x.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  } else if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  }
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hs);
  curl_easy_cleanup(h);
  return r;
}

// The local hub process. Serves the four fixture branches as kRepo and the main branch as
// the gated kGatedRepo (token kToken).
class TestHub {
 public:
  static std::unique_ptr<TestHub> Start() {
    std::vector<std::pair<std::string, std::string>> branches;
    for (const std::string& b : Branches()) branches.emplace_back(b, FixtureDir(b));
    auto hub = std::unique_ptr<TestHub>(new TestHub(
        {"--repo", ::llama::testing::HubRepoSpec(kRepo, branches), "--repo",
         ::llama::testing::HubRepoSpec(kGatedRepo, {{"main", FixtureDir("main")}}), "--gated",
         kGatedRepo, "--token", kToken}));
    if (!hub->process_.started()) {
      ADD_FAILURE() << "hub did not start";
      return nullptr;
    }
    return hub;
  }

  std::string endpoint() const { return info()["endpoint"].get<std::string>(); }
  int cdn_port() const { return info()["cdn_port"].get<int>(); }
  std::string Commit(const std::string& branch, const std::string& repo = kRepo) const {
    return info()["repos"][repo][branch].get<std::string>();
  }

  void SetFaults(const nlohmann::json& faults, int page_size = 1000) {
    nlohmann::json spec = {{"faults", faults}, {"page_size", page_size}};
    ASSERT_EQ(HttpCall("POST", endpoint() + "/_faults", spec.dump()).status, 200);
  }
  void ClearFaults() { SetFaults(nlohmann::json::array()); }
  nlohmann::json Log() const {
    return nlohmann::json::parse(HttpCall("GET", endpoint() + "/_log").body);
  }
  void ClearLog() { ASSERT_EQ(HttpCall("POST", endpoint() + "/_log/clear", "").status, 200); }
  // Log entries of one kind ("revision", "tree", "head", "resolve", "cdn") for one file.
  std::vector<nlohmann::json> Entries(const std::string& kind,
                                      const std::string& file = "") const {
    std::vector<nlohmann::json> out;
    for (const auto& e : Log()) {
      if (e["kind"] != kind) continue;
      if (!file.empty() && e.value("file", "") != file) continue;
      out.push_back(e);
    }
    return out;
  }

 private:
  explicit TestHub(std::vector<std::string> args)
      : process_(std::move(args), std::chrono::seconds(15), /*quiet_stderr=*/false,
                 "fetcher_test") {}
  const nlohmann::json& info() const { return process_.info(); }
  ::llama::testing::HubProcess process_;
};

// A test hub on loopback plus a fresh cache, with FetchOptions pointing at both. Suites
// derive from it and adjust opts_ (retry timing, reserves) in their own SetUp.
class HubFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = TestHub::Start();
    ASSERT_NE(hub_, nullptr);
    opts_.endpoint = hub_->endpoint();
    opts_.cache_dir = cache_.path() + "/hub";
    opts_.disk_reserve_bytes = 0;
  }
  std::unique_ptr<TestHub> hub_;
  TempDir cache_;
  llama::fetch::FetchOptions opts_;
};

inline std::string RepoDir(const std::string& cache) {
  return cache + "/models--TheBloke--Llama-2-7b-Chat-GPTQ";
}

// Every file of the fixture branch is present and byte-identical in the snapshot, and the
// snapshot holds nothing else.
inline void ExpectSnapshotMatchesFixture(const std::string& snapshot,
                                         const std::string& branch) {
  std::vector<std::string> want, got;
  for (const auto& e : fs::directory_iterator(FixtureDir(branch))) {
    want.push_back(e.path().filename().string());
    EXPECT_EQ(ReadFile((fs::path(snapshot) / e.path().filename()).string()),
              ReadFile(e.path().string()))
        << "snapshot file differs: " << e.path().filename() << " (" << branch << ")";
  }
  for (const auto& e : fs::recursive_directory_iterator(snapshot)) {
    got.push_back(e.path().lexically_relative(snapshot).string());
  }
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
}

// Nothing partial or wrong is reachable under snapshots/: every entry of every snapshot is
// byte-identical to the same file of the branch whose commit names the snapshot.
inline void ExpectSnapshotsClean(const std::string& cache, const TestHub& hub) {
  std::string snaps = RepoDir(cache) + "/snapshots";
  if (!fs::exists(snaps)) return;
  for (const auto& snap : fs::directory_iterator(snaps)) {
    std::string branch;
    for (const auto& b : Branches()) {
      if (hub.Commit(b) == snap.path().filename().string()) branch = b;
    }
    ASSERT_FALSE(branch.empty()) << "unknown snapshot " << snap.path();
    for (const auto& e : fs::recursive_directory_iterator(snap.path())) {
      std::string rel = e.path().lexically_relative(snap.path()).string();
      std::string fixture = FixtureDir(branch) + "/" + rel;
      ASSERT_TRUE(fs::exists(fixture)) << "unexpected entry in snapshot: " << e.path();
      EXPECT_EQ(ReadFile(e.path().string()), ReadFile(fixture))
          << "partial or wrong file reachable: " << e.path();
    }
  }
}

}  // namespace llama::fetch::testing

#endif  // LLAMA_TESTS_FETCHER_TEST_HUB_H_
