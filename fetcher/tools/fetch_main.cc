// llama-fetch: download one branch of a Hugging Face model repo into the HF cache.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "fetcher/fetcher.h"
#include "fetcher/progress_bar.h"

ABSL_FLAG(std::string, branch, "main", "Branch, tag or commit to fetch");
ABSL_FLAG(std::string, cache_dir, "", "Hub cache dir (default: HF_HUB_CACHE, $HF_HOME/hub, "
          "~/.cache/huggingface/hub)");
ABSL_FLAG(std::string, endpoint, "", "Hub endpoint (default: HF_ENDPOINT or "
          "https://huggingface.co)");
ABSL_FLAG(std::vector<std::string>, include, {}, "Comma-separated globs of files to fetch");
ABSL_FLAG(std::vector<std::string>, exclude, {}, "Comma-separated globs of files to skip");
ABSL_FLAG(int, parallel, 4, "Files downloaded at once");
ABSL_FLAG(int, max_retries, 5, "Retries per request / file");
ABSL_FLAG(bool, offline, false, "Serve only from the cache (also HF_HUB_OFFLINE=1)");
ABSL_FLAG(bool, quiet, false, "No progress bar");

namespace {

constexpr int kExitOk = 0, kExitUsage = 2, kExitNotFound = 3, kExitAuth = 4, kExitOther = 5;
std::atomic<bool> g_cancel{false};

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:  // offline and not cached
      return kExitNotFound;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitAuth;
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitOther;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Download a branch of a Hugging Face model repo into the HF-compatible cache.\n"
      "Usage: llama-fetch ORG/NAME [--branch gptq-4bit-32g-actorder_True] [flags]\n"
      "Prints the snapshot directory on success.\n"
      "Environment: HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, HF_TOKEN, HF_TOKEN_PATH, "
      "HF_HUB_OFFLINE.\n"
      "Exit codes: 0 ok, 2 usage / invalid argument, 3 not found (repo, revision, file, or "
      "not cached offline), 4 authentication / access denied (gated repo, token), "
      "5 network, disk, corruption or other errors.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "usage: llama-fetch ORG/NAME [--branch BRANCH] (see --help)\n";
    return kExitUsage;
  }
  llama::fetch::FetchOptions opts = llama::fetch::FetchOptions::FromEnv();
  if (!absl::GetFlag(FLAGS_cache_dir).empty()) opts.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  if (!absl::GetFlag(FLAGS_endpoint).empty()) opts.endpoint = absl::GetFlag(FLAGS_endpoint);
  opts.allow_patterns = absl::GetFlag(FLAGS_include);
  opts.ignore_patterns = absl::GetFlag(FLAGS_exclude);
  opts.parallel = absl::GetFlag(FLAGS_parallel);
  opts.max_retries = absl::GetFlag(FLAGS_max_retries);
  if (absl::GetFlag(FLAGS_offline)) opts.offline = true;
  if (opts.parallel < 1) {
    std::cerr << "--parallel must be >= 1\n";
    return kExitUsage;
  }
  std::signal(SIGINT, [](int) { g_cancel.store(true); });
  std::signal(SIGTERM, [](int) { g_cancel.store(true); });
  opts.cancel = &g_cancel;
  llama::fetch::ProgressBar bar(std::cerr, isatty(STDERR_FILENO) != 0);
  if (!absl::GetFlag(FLAGS_quiet)) {
    opts.on_progress = [&bar](const llama::fetch::Progress& p) { bar.Update(p); };
  }
  const std::string repo = args[1];
  const std::string branch = absl::GetFlag(FLAGS_branch);
  absl::StatusOr<llama::fetch::FetchResult> r = llama::fetch::FetchRepo(repo, branch, opts);
  bar.Finish();
  if (!r.ok()) {
    std::cerr << "llama-fetch: " << r.status() << "\n";
    return ExitCodeFor(r.status());
  }
  std::cerr << "fetched " << repo << "@" << branch << " (commit " << r->commit << ", "
            << r->files << " files, " << llama::fetch::HumanBytes(r->bytes_downloaded)
            << " downloaded)\n";
  std::cout << r->snapshot_dir << std::endl;
  return kExitOk;
}
