// Test helpers: starts tests/hub/hub.py on loopback serving the fixture branches, talks to
// its control endpoints, and checks snapshot contents against the fixtures.
#ifndef LLAMA_TESTS_FETCHER_TEST_HUB_H_
#define LLAMA_TESTS_FETCHER_TEST_HUB_H_

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fetcher/fetcher.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace llama::fetch::testing {

namespace fs = std::filesystem;

inline constexpr char kRepo[] = "TheBloke/Llama-2-7b-Chat-GPTQ";
inline constexpr char kGatedRepo[] = "meta-llama/Llama-2-7b-chat-hf";
inline constexpr char kToken[] = "hf_test_token";
inline const std::vector<std::string>& Branches() {
  static const std::vector<std::string> b = {"main", "gptq-4bit-32g-actorder_True",
                                             "gptq-4bit-64g-actorder_True",
                                             "gptq-4bit-128g-actorder_True"};
  return b;
}
inline std::string FixtureDir(const std::string& branch) {
  return std::string(LLAMA_FIXTURES_DIR) + "/stories260K-GPTQ/" + branch;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fetcher_test_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
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
    auto hub = std::unique_ptr<TestHub>(new TestHub());
    std::string spec = std::string(kRepo) + "=";
    for (size_t i = 0; i < Branches().size(); ++i) {
      if (i) spec += ",";
      spec += Branches()[i] + ":" + FixtureDir(Branches()[i]);
    }
    std::string gated = std::string(kGatedRepo) + "=main:" + FixtureDir("main");
    std::string port_file = hub->dir_.path() + "/ports.json";
    std::vector<std::string> args = {"/usr/bin/python3",
                                     std::string(LLAMA_SOURCE_DIR) + "/tests/hub/hub.py",
                                     "--repo", spec, "--repo", gated, "--gated", kGatedRepo,
                                     "--token", kToken, "--port-file", port_file};
    hub->pid_ = ::fork();
    if (hub->pid_ == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 300 && !fs::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!fs::exists(port_file)) {
      ADD_FAILURE() << "hub did not start";
      return nullptr;
    }
    hub->info_ = nlohmann::json::parse(ReadFile(port_file));
    return hub;
  }

  ~TestHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

  std::string endpoint() const { return info_["endpoint"].get<std::string>(); }
  int cdn_port() const { return info_["cdn_port"].get<int>(); }
  std::string Commit(const std::string& branch, const std::string& repo = kRepo) const {
    return info_["repos"][repo][branch].get<std::string>();
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
  TestHub() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  nlohmann::json info_;
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
