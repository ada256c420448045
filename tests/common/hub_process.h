// Shared by the fetcher and services tests: the stories260K GPTQ fixture branches as the
// local hub serves them, temp dirs, and tests/hub/hub.py run as a child process on
// loopback. Each area wraps HubProcess in its own hub class (tests/fetcher/test_hub.h,
// tests/services/service_harness.h).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace llama::testing {

// The repo the hub serves the stories260K GPTQ fixture branches as.
inline constexpr char kRepo[] = "TheBloke/Llama-2-7b-Chat-GPTQ";
inline const std::vector<std::string>& Branches() {
  static const std::vector<std::string> b = {"main", "gptq-4bit-32g-actorder_True",
                                             "gptq-4bit-64g-actorder_True",
                                             "gptq-4bit-128g-actorder_True"};
  return b;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh temp dir (<tmp>/<prefix>_XXXXXX), removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "llama_test") {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// hub.py's --repo value: "<repo>=<branch>:<dir>,<branch>:<dir>,..." in the given order.
inline std::string HubRepoSpec(const std::string& repo,
                               const std::vector<std::pair<std::string, std::string>>& branches) {
  std::string spec = repo + "=";
  for (size_t i = 0; i < branches.size(); ++i) {
    if (i) spec += ",";
    spec += branches[i].first + ":" + branches[i].second;
  }
  return spec;
}

// tests/hub/hub.py as a child process. The constructor starts it with `args` plus
// --port-file (a file in its own temp dir) and waits, up to `start_timeout`, for the hub
// to write its ports there; the destructor stops it (SIGTERM) and reaps it. The hub's
// stdout goes to /dev/null, and its stderr too when `quiet_stderr`.
class HubProcess {
 public:
  HubProcess(std::vector<std::string> args, std::chrono::milliseconds start_timeout,
             bool quiet_stderr, const std::string& tmp_prefix)
      : dir_(tmp_prefix) {
    const std::string port_file = dir_.path() + "/ports.json";
    args.insert(args.begin(), {"/usr/bin/python3",
                               std::string(LLAMA_SOURCE_DIR) + "/tests/hub/hub.py"});
    args.insert(args.end(), {"--port-file", port_file});
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      if (quiet_stderr) ::dup2(devnull, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    constexpr std::chrono::milliseconds kPoll(50);
    for (int i = 0; i < start_timeout / kPoll && !std::filesystem::exists(port_file); ++i) {
      std::this_thread::sleep_for(kPoll);
    }
    if (std::filesystem::exists(port_file)) info_ = nlohmann::json::parse(ReadFile(port_file));
  }
  ~HubProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  HubProcess(const HubProcess&) = delete;
  HubProcess& operator=(const HubProcess&) = delete;

  // Whether the hub wrote its port file in time.
  bool started() const { return !info_.is_null(); }
  // The port file: {"endpoint": ..., "cdn_port": ..., "repos": {repo: {branch: commit}}}.
  const nlohmann::json& info() const { return info_; }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  nlohmann::json info_;
};

}  // namespace llama::testing
