// The llama-fetch binary: killed with SIGKILL mid-file and re-run, it completes without
// re-downloading what it had; exit codes; the snapshot path on stdout.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetcher/progress_bar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_hub.h"

namespace llama::fetch::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string kBinary = std::string(LLAMA_BINARY_DIR) + "/fetcher/llama-fetch";

struct Child {
  pid_t pid = -1;
  std::string out, err;  // file paths
};

// Starts llama-fetch with `args`, stdout/stderr to files, HF_* variables cleared.
Child Spawn(const std::vector<std::string>& args, const std::string& dir) {
  Child c;
  static int n = 0;
  c.out = dir + "/out" + std::to_string(n);
  c.err = dir + "/err" + std::to_string(n++);
  c.pid = ::fork();
  if (c.pid == 0) {
    for (const char* v : {"HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN",
                          "HF_TOKEN_PATH", "HF_HUB_OFFLINE"}) {
      ::unsetenv(v);
    }
    ::setenv("HF_HOME", (dir + "/hfhome").c_str(), 1);
    int o = ::open(c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<std::string> all = {kBinary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return c;
}

int Wait(const Child& c) {
  int st = 0;
  ::waitpid(c.pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBinary)) << kBinary;
    hub_ = TestHub::Start();
    ASSERT_NE(hub_, nullptr);
    cache_ = dir_.path() + "/hub";
  }
  std::vector<std::string> Args(const std::string& repo, const std::string& branch) {
    return {repo, "--branch=" + branch, "--cache_dir=" + cache_,
            "--endpoint=" + hub_->endpoint()};
  }
  std::unique_ptr<TestHub> hub_;
  TempDir dir_;
  std::string cache_;
};

TEST_F(CliTest, KilledMidFileThenRerunCompletesAndResumes) {
  const std::string branch = "gptq-4bit-128g-actorder_True";
  const std::string model = "model.safetensors";
  const int64_t size = static_cast<int64_t>(fs::file_size(FixtureDir(branch) + "/" + model));
  const std::string partial = RepoDir(cache_) +
      "/blobs/2e088fa0b96ee8743c5d0869c09e787d3292f4be5aafd0eda6cf2543073ad0f3.incomplete";
  hub_->SetFaults({{{"kind", "trickle"}, {"match", model}, {"bytes_per_sec", 40000},
                    {"count", -1}}});
  Child c = Spawn(Args(kRepo, branch), dir_.path());
  // Wait until part of the model is on disk, then kill -9 mid-file.
  for (int i = 0; i < 400 && ReadFile(partial).size() < 20000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_GE(ReadFile(partial).size(), 20000u) << ReadFile(c.err);
  ASSERT_EQ(::kill(c.pid, SIGKILL), 0);
  EXPECT_EQ(Wait(c), 128 + SIGKILL);
  const int64_t have = static_cast<int64_t>(fs::file_size(partial));
  ASSERT_LT(have, size);
  // Nothing partial is reachable; no ref yet.
  ExpectSnapshotsClean(cache_, *hub_);
  EXPECT_FALSE(fs::exists(RepoDir(cache_) + "/snapshots/" + hub_->Commit(branch) + "/" + model));
  EXPECT_FALSE(fs::exists(RepoDir(cache_) + "/refs/" + branch));

  hub_->ClearFaults();
  hub_->ClearLog();
  Child again = Spawn(Args(kRepo, branch), dir_.path());
  ASSERT_EQ(Wait(again), 0) << ReadFile(again.err);
  const std::string snapshot = RepoDir(cache_) + "/snapshots/" + hub_->Commit(branch);
  EXPECT_EQ(ReadFile(again.out), snapshot + "\n");
  ExpectSnapshotMatchesFixture(snapshot, branch);
  EXPECT_EQ(ReadFile(RepoDir(cache_) + "/refs/" + branch), hub_->Commit(branch));
  // The re-run asked only for the missing tail.
  auto gets = hub_->Entries("cdn", model);
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0]["range"], "bytes=" + std::to_string(have) + "-");
  EXPECT_EQ(gets[0]["bytes_sent"].get<int64_t>(), size - have);
  EXPECT_FALSE(fs::exists(partial));
}

TEST_F(CliTest, ExitCodesAndMessages) {
  Child c = Spawn({}, dir_.path());
  EXPECT_EQ(Wait(c), 2);
  c = Spawn(Args(kRepo, "no-such-branch"), dir_.path());
  EXPECT_EQ(Wait(c), 3);
  EXPECT_THAT(ReadFile(c.err), HasSubstr("revision 'no-such-branch' not found"));
  c = Spawn(Args(kGatedRepo, "main"), dir_.path());
  EXPECT_EQ(Wait(c), 4);
  EXPECT_THAT(ReadFile(c.err), HasSubstr("token is needed"));
  std::vector<std::string> offline = Args(kRepo, "main");
  offline.push_back("--offline");
  c = Spawn(offline, dir_.path());
  EXPECT_EQ(Wait(c), 3);
  EXPECT_THAT(ReadFile(c.err), HasSubstr("offline"));
  c = Spawn({kRepo, "--branch=main", "--cache_dir=" + cache_, "--endpoint=http://127.0.0.1:1",
             "--max_retries=0"}, dir_.path());
  EXPECT_EQ(Wait(c), 5);
  c = Spawn({"--help"}, dir_.path());
  Wait(c);
  EXPECT_THAT(ReadFile(c.out) + ReadFile(c.err), HasSubstr("Exit codes"));
}

TEST_F(CliTest, IncludeExcludeAndOfflineAfterFetch) {
  std::vector<std::string> args = Args(kRepo, "main");
  args.push_back("--include=*.json,tokenizer.model");
  args.push_back("--exclude=generation_config.json");
  Child c = Spawn(args, dir_.path());
  ASSERT_EQ(Wait(c), 0) << ReadFile(c.err);
  std::string snapshot = ReadFile(c.out);
  ASSERT_FALSE(snapshot.empty());
  snapshot.pop_back();
  EXPECT_TRUE(fs::exists(snapshot + "/config.json"));
  EXPECT_TRUE(fs::exists(snapshot + "/tokenizer.model"));
  EXPECT_FALSE(fs::exists(snapshot + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(snapshot + "/generation_config.json"));
  hub_->ClearLog();
  std::vector<std::string> offline = Args(kRepo, "main");
  offline.push_back("--offline");
  c = Spawn(offline, dir_.path());
  ASSERT_EQ(Wait(c), 0) << ReadFile(c.err);
  EXPECT_EQ(ReadFile(c.out), snapshot + "\n");
  EXPECT_TRUE(hub_->Log().empty());
}

TEST(ProgressBarTest, FormatsBytesFilesAndBar) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(int64_t{4} << 30), "4.0 GiB");
  Progress p;
  p.files = {{"model.safetensors", 512, 1024}, {"config.json", 0, 1024}};
  p.done = 512;
  p.total = 2048;
  p.files_total = 2;
  std::string line = FormatProgressLine(p, 20);
  EXPECT_EQ(line, "[#####...............]  25%  512 B/2.0 KiB  0/2 files  model.safetensors");
  std::ostringstream os;
  RenderProgress(p, os);
  EXPECT_EQ(os.str().front(), '\r');
  EXPECT_THAT(os.str(), HasSubstr("25%"));
  std::ostringstream plain;
  ProgressBar bar(plain, /*is_tty=*/false);
  bar.Update(p);
  p.done = 2048;
  p.files_done = 2;
  p.files = {{"model.safetensors", 1024, 1024}, {"config.json", 1024, 1024}};
  bar.Update(p);  // throttled: not printed
  bar.Finish();   // the final state always is
  EXPECT_THAT(plain.str(), HasSubstr("100%  2.0 KiB/2.0 KiB  2/2 files\n"));
  EXPECT_EQ(plain.str().find('\r'), std::string::npos);
}

}  // namespace
}  // namespace llama::fetch::testing
