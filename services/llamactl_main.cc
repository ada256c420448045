// llamactl: operator CLI for llamad (and a few local tools).
//
//   llamactl list | status [NAME] | fetch NAME | load NAME | unload NAME | default NAME |
//            rm NAME | generate PROMPT | chat [MESSAGE] | run --model DIR --prompt TEXT
//
// The server comes from --server or LLAMA_SERVER (default 127.0.0.1:50051).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/chat_format.h"
#include "engine/generate.h"
#include "engine/registry.h"
#include "fetcher/fetcher.h"
#include "fetcher/progress_bar.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "llama/v1/admin.grpc.pb.h"
#include "llama/v1/inference.grpc.pb.h"
#include "services/client.h"

namespace {
std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}
}  // namespace

ABSL_FLAG(std::string, server, Env("LLAMA_SERVER", "127.0.0.1:50051"),
          "llamad address host:port [LLAMA_SERVER]");
ABSL_FLAG(bool, tls, false, "connect with TLS");
ABSL_FLAG(std::string, tls_ca, Env("LLAMA_TLS_CA", ""), "PEM root certificates [LLAMA_TLS_CA]");
ABSL_FLAG(std::string, token, Env("LLAMA_INFERENCE_TOKEN", ""),
          "inference bearer token [LLAMA_INFERENCE_TOKEN]");
ABSL_FLAG(std::string, admin_token, Env("LLAMA_ADMIN_TOKEN", ""),
          "admin bearer token [LLAMA_ADMIN_TOKEN]");
ABSL_FLAG(std::string, output, "text", "text | json (list, status, fetch, load, ...)");
ABSL_FLAG(double, timeout, 0, "seconds before a call gives up (0 = none; generation)");
ABSL_FLAG(std::string, variant, "", "variant to use (default: the server's default)");
ABSL_FLAG(int, max_new_tokens, 128, "tokens to generate at most");
ABSL_FLAG(double, temperature, 0.0, "0 = greedy");
ABSL_FLAG(double, top_p, 1.0, "nucleus sampling");
ABSL_FLAG(int, top_k, 0, "top-k sampling, 0 = off");
ABSL_FLAG(double, repetition_penalty, 1.0, "repetition penalty");
ABSL_FLAG(uint64_t, seed, 0, "sampling seed");
ABSL_FLAG(std::vector<std::string>, stop, {}, "comma-separated stop strings");
ABSL_FLAG(std::string, system, "", "chat: system prompt");
ABSL_FLAG(std::string, repo, "", "fetch: repo (default: the server's, or "
                                 "TheBloke/Llama-2-7b-Chat-GPTQ without a server)");
ABSL_FLAG(std::string, revision, "", "fetch: branch/tag/commit (default: NAME)");
ABSL_FLAG(bool, load, false, "fetch: load once fetched");
ABSL_FLAG(bool, local, false, "fetch: use the fetcher directly even if a server runs");
ABSL_FLAG(std::string, cache_dir, "", "fetch --local: cache dir (default HF_HUB_CACHE ...)");
ABSL_FLAG(bool, forget, false, "rm: also forget the variant");
ABSL_FLAG(std::string, model, "", "run: local checkpoint dir");
ABSL_FLAG(std::string, prompt, "", "run: prompt text");
ABSL_FLAG(std::string, backend, "cpu", "run: cpu | cuda");

namespace llama::cli {
namespace {

std::atomic<bool> g_interrupted{false};

ConnectOptions ConnectFromFlags() {
  ConnectOptions o;
  o.server = absl::GetFlag(FLAGS_server);
  o.tls = absl::GetFlag(FLAGS_tls);
  o.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  o.token = absl::GetFlag(FLAGS_token);
  o.admin_token = absl::GetFlag(FLAGS_admin_token);
  return o;
}

absl::Duration Timeout() {
  double t = absl::GetFlag(FLAGS_timeout);
  return t > 0 ? absl::Seconds(t) : absl::InfiniteDuration();
}

bool Json() { return absl::GetFlag(FLAGS_output) == "json"; }

int Fail(const grpc::Status& s) {
  std::cerr << "llamactl: " << s.error_message() << " (code " << s.error_code() << ")\n";
  return ExitCodeFor(s.error_code());
}

v1::SamplingParameters ParamsFromFlags() {
  v1::SamplingParameters p;
  p.set_max_new_tokens(absl::GetFlag(FLAGS_max_new_tokens));
  p.set_temperature(absl::GetFlag(FLAGS_temperature));
  p.set_top_p(absl::GetFlag(FLAGS_top_p));
  p.set_top_k(absl::GetFlag(FLAGS_top_k));
  p.set_repetition_penalty(absl::GetFlag(FLAGS_repetition_penalty));
  p.set_seed(absl::GetFlag(FLAGS_seed));
  for (const auto& s : absl::GetFlag(FLAGS_stop)) p.add_stop(s);
  return p;
}

class Cli {
 public:
  Cli() : opts_(ConnectFromFlags()), channel_(Connect(opts_)) {}

  // True once connected; false as soon as connecting fails (or after `wait`).
  bool ServerReachable(absl::Duration wait) {
    const auto deadline = absl::ToChronoTime(absl::Now() + wait);
    grpc_connectivity_state st = channel_->GetState(/*try_to_connect=*/true);
    while (st != GRPC_CHANNEL_READY) {
      if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) return false;
      if (!channel_->WaitForStateChange(st, deadline)) return false;
      st = channel_->GetState(/*try_to_connect=*/true);
    }
    return true;
  }

  int List() {
    v1::ListVariantsResponse resp;
    grpc::ClientContext ctx;
    Prepare(&ctx, opts_.admin_token, absl::Seconds(30));
    grpc::Status s = Admin()->ListVariants(&ctx, {}, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << (Json() ? ToJson(resp) + "\n" : VariantsTable(resp));
    return kExitOk;
  }

  int Status(const std::string& name) {
    if (!name.empty()) {
      v1::GetVariantRequest req;
      req.set_name(name);
      v1::Variant v;
      grpc::ClientContext ctx;
      Prepare(&ctx, opts_.admin_token, absl::Seconds(30));
      grpc::Status s = Admin()->GetVariant(&ctx, req, &v);
      if (!s.ok()) return Fail(s);
      std::cout << (Json() ? ToJson(v) + "\n" : VariantDetails(v));
      return kExitOk;
    }
    grpc::health::v1::HealthCheckResponse health;
    {
      grpc::ClientContext ctx;
      Prepare(&ctx, "", absl::Seconds(10));
      grpc::Status s = grpc::health::v1::Health::NewStub(channel_)->Check(&ctx, {}, &health);
      if (!s.ok()) return Fail(s);
    }
    const std::string overall =
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(health.status());
    if (Json()) {
      v1::ListVariantsResponse resp;
      grpc::ClientContext ctx;
      Prepare(&ctx, opts_.admin_token, absl::Seconds(30));
      grpc::Status s = Admin()->ListVariants(&ctx, {}, &resp);
      if (!s.ok()) return Fail(s);
      std::cout << "{\"server\": \"" << opts_.server << "\", \"health\": \"" << overall
                << "\", \"variants\": " << ToJson(resp) << "}\n";
      return kExitOk;
    }
    std::cout << "server:  " << opts_.server << "\nhealth:  " << overall << "\n\n";
    return List();
  }

  int Fetch(const std::string& name) {
    v1::FetchVariantRequest req;
    req.set_name(name);
    req.set_repo(absl::GetFlag(FLAGS_repo));
    req.set_revision(absl::GetFlag(FLAGS_revision));
    req.set_load(absl::GetFlag(FLAGS_load));
    grpc::ClientContext ctx;
    Prepare(&ctx, opts_.admin_token, Timeout());
    auto reader = Admin()->FetchVariant(&ctx, req);
    fetch::ProgressBar bar(std::cerr, isatty(STDERR_FILENO));
    v1::FetchProgress msg, last;
    while (reader->Read(&msg)) {
      if (g_interrupted) ctx.TryCancel();
      if (msg.done()) {
        last = msg;
        continue;
      }
      fetch::Progress p;
      p.done = msg.bytes_done();
      p.total = msg.bytes_total();
      p.files_done = msg.files_done();
      p.files_total = msg.files_total();
      if (!msg.file().empty()) p.files.push_back({msg.file(), 0, 0});
      bar.Update(p);
    }
    bar.Finish();
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (Json()) {
      std::cout << ToJson(last) << "\n";
    } else {
      std::cout << last.variant().name() << ": " << last.variant().state_name() << " (commit "
                << last.commit() << ")\n" << last.snapshot_dir() << "\n";
    }
    return kExitOk;
  }

  template <typename Req, typename Fn>
  int VariantRpc(const std::string& name, Fn fn) {
    Req req;
    req.set_name(name);
    v1::Variant v;
    grpc::ClientContext ctx;
    Prepare(&ctx, opts_.admin_token, Timeout());
    auto stub = Admin();
    grpc::Status s = ((*stub).*fn)(&ctx, req, &v);
    if (!s.ok()) return Fail(s);
    std::cout << (Json() ? ToJson(v) + "\n" : VariantDetails(v));
    return kExitOk;
  }

  int Remove(const std::string& name) {
    v1::DeleteVariantRequest req;
    req.set_name(name);
    req.set_forget(absl::GetFlag(FLAGS_forget));
    v1::DeleteVariantResponse resp;
    grpc::ClientContext ctx;
    Prepare(&ctx, opts_.admin_token, Timeout());
    grpc::Status s = Admin()->DeleteVariant(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << (Json() ? ToJson(resp) + "\n"
                         : absl::StrCat("removed ", name, " (", resp.bytes_freed(), " bytes)\n"));
    return kExitOk;
  }

  // Streams one generation to stdout; the reply text is appended to *reply.
  template <typename Req, typename Call>
  int Stream(const Req& req, Call call, std::string* reply) {
    grpc::ClientContext ctx;
    Prepare(&ctx, opts_.token, Timeout());
    if (!absl::GetFlag(FLAGS_variant).empty()) {
      ctx.AddMetadata("x-model-variant", absl::GetFlag(FLAGS_variant));
    }
    auto stub = v1::Inference::NewStub(channel_);
    auto reader = call(*stub, &ctx, req);
    v1::GenerateResponse chunk;
    v1::Usage usage;
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
    absl::Time start = absl::Now();
    while (reader->Read(&chunk)) {
      if (g_interrupted) ctx.TryCancel();
      std::cout << chunk.text() << std::flush;
      if (reply) *reply += chunk.text();
      usage = chunk.usage();
      if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = chunk.finish_reason();
    }
    std::cout << "\n";
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    double secs = absl::ToDoubleSeconds(absl::Now() - start);
    if (isatty(STDERR_FILENO) || Json()) {
      std::cerr << absl::StrFormat("[%s: %d prompt + %d generated tokens, %.1f tok/s]\n",
                                   v1::FinishReason_Name(finish), usage.prompt_tokens(),
                                   usage.completion_tokens(),
                                   secs > 0 ? usage.completion_tokens() / secs : 0.0);
    }
    return kExitOk;
  }

  int Generate(const std::string& prompt) {
    v1::GenerateRequest req;
    req.set_prompt(prompt);
    *req.mutable_params() = ParamsFromFlags();
    return Stream(req,
                  [](v1::Inference::Stub& s, grpc::ClientContext* c, const v1::GenerateRequest& r) {
                    return s.Generate(c, r);
                  },
                  nullptr);
  }

  int Chat(const std::string& message) {
    v1::ChatRequest req;
    *req.mutable_params() = ParamsFromFlags();
    if (!absl::GetFlag(FLAGS_system).empty()) {
      auto* m = req.add_messages();
      m->set_role("system");
      m->set_content(absl::GetFlag(FLAGS_system));
    }
    auto call = [](v1::Inference::Stub& s, grpc::ClientContext* c, const v1::ChatRequest& r) {
      return s.Chat(c, r);
    };
    const bool interactive = message.empty() && isatty(STDIN_FILENO);
    if (!interactive) {
      std::string text = message;
      if (text.empty()) text.assign(std::istreambuf_iterator<char>(std::cin), {});
      auto* m = req.add_messages();
      m->set_role("user");
      m->set_content(text);
      return Stream(req, call, nullptr);
    }
    std::cerr << "chat with " << (absl::GetFlag(FLAGS_variant).empty()
                                      ? std::string("the default variant")
                                      : absl::GetFlag(FLAGS_variant))
              << "; an empty line or Ctrl-D ends it\n";
    std::string line;
    while (true) {
      std::cout << "> " << std::flush;
      if (!std::getline(std::cin, line) || line.empty()) break;
      auto* m = req.add_messages();
      m->set_role("user");
      m->set_content(line);
      std::string reply;
      if (int rc = Stream(req, call, &reply); rc != kExitOk) return rc;
      auto* a = req.add_messages();
      a->set_role("assistant");
      a->set_content(reply);
    }
    return kExitOk;
  }

  std::unique_ptr<v1::Admin::Stub> Admin() { return v1::Admin::NewStub(channel_); }

 private:
  ConnectOptions opts_;
  std::shared_ptr<grpc::Channel> channel_;
};

// `fetch` without a server: the fetcher library directly.
int FetchLocal(const std::string& name) {
  fetch::FetchOptions opts = fetch::FetchOptions::FromEnv();
  if (!absl::GetFlag(FLAGS_cache_dir).empty()) opts.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  std::string repo = absl::GetFlag(FLAGS_repo);
  if (repo.empty()) repo = "TheBloke/Llama-2-7b-Chat-GPTQ";
  std::string rev = absl::GetFlag(FLAGS_revision);
  if (rev.empty()) rev = name;
  fetch::ProgressBar bar(std::cerr, isatty(STDERR_FILENO));
  std::atomic<bool> cancel{false};
  opts.cancel = &cancel;
  opts.on_progress = [&](const fetch::Progress& p) {
    if (g_interrupted) cancel = true;
    bar.Update(p);
  };
  absl::StatusOr<fetch::FetchResult> r = fetch::FetchRepo(repo, rev, opts);
  bar.Finish();
  if (!r.ok()) {
    std::cerr << "llamactl: fetch " << repo << "@" << rev << ": " << r.status() << "\n";
    return ExitCodeFor(static_cast<grpc::StatusCode>(r.status().code()));
  }
  if (Json()) {
    std::cout << absl::StrFormat(
        "{\"repo\": \"%s\", \"revision\": \"%s\", \"commit\": \"%s\", \"snapshot_dir\": "
        "\"%s\", \"files\": %d, \"bytes_downloaded\": %d}\n",
        r->repo_id, r->revision, r->commit, r->snapshot_dir, r->files, r->bytes_downloaded);
  } else {
    std::cout << r->snapshot_dir << "\n";
  }
  return kExitOk;
}

// `run`: a local checkpoint in-process through the engine.
int RunLocal() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) {
    std::cerr << "llamactl run: --model DIR is required\n";
    return kExitUsage;
  }
  absl::StatusOr<Backend> backend = ParseBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::cerr << "llamactl run: " << backend.status() << "\n";
    return kExitUsage;
  }
  RunnerOptions ropts;
  ropts.max_slots = 1;
  absl::Time t0 = absl::Now();
  absl::StatusOr<LoadedModel> model = LoadModelFromDir(dir, *backend, ropts);
  if (!model.ok()) {
    std::cerr << "llamactl run: " << model.status() << "\n";
    return ExitCodeFor(static_cast<grpc::StatusCode>(model.status().code()));
  }
  absl::Duration load_time = absl::Now() - t0;
  std::vector<int> prompt = model->tokenizer->Encode(absl::GetFlag(FLAGS_prompt), true);
  SamplingParams params;
  params.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  params.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  params.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  params.top_k = absl::GetFlag(FLAGS_top_k);
  params.repetition_penalty = static_cast<float>(absl::GetFlag(FLAGS_repetition_penalty));
  params.seed = absl::GetFlag(FLAGS_seed);
  params.stop = absl::GetFlag(FLAGS_stop);
  if (absl::Status s = ValidateSamplingParams(params); !s.ok()) {
    std::cerr << "llamactl run: " << s << "\n";
    return kExitInvalidArgument;
  }
  std::cout << absl::GetFlag(FLAGS_prompt) << std::flush;
  absl::Time start = absl::Now();
  absl::Time first;
  absl::StatusOr<GenerateResult> r =
      llama::Generate(*model->runner, *model->tokenizer, prompt, params,
                      [&](const StepOutput& step) {
                        if (first == absl::Time()) first = absl::Now();
                        std::cout << step.text << std::flush;
                        return !g_interrupted.load();
                      });
  std::cout << "\n";
  if (!r.ok()) {
    std::cerr << "llamactl run: " << r.status() << "\n";
    return ExitCodeFor(static_cast<grpc::StatusCode>(r.status().code()));
  }
  absl::Time end = absl::Now();
  double total = absl::ToDoubleSeconds(end - start);
  double decode = first == absl::Time() ? 0 : absl::ToDoubleSeconds(end - first);
  int n = static_cast<int>(r->tokens.size());
  std::cerr << absl::StrFormat(
      "[%s on %s: load %.2f s, %d prompt + %d generated tokens in %.3f s, %.1f tok/s "
      "(decode %.1f tok/s), finish %s]\n",
      dir, model->runner->device_name(), absl::ToDoubleSeconds(load_time), r->prompt_tokens, n,
      total, total > 0 ? n / total : 0.0, decode > 0 && n > 1 ? (n - 1) / decode : 0.0,
      FinishReasonName(r->finish));
  return kExitOk;
}

int Main(std::vector<char*> args) {
  if (args.size() < 2) {
    std::cerr << absl::ProgramUsageMessage() << "\n";
    return kExitUsage;
  }
  const std::string cmd = args[1];
  const std::string arg = args.size() > 2 ? args[2] : "";
  auto need_arg = [&]() {
    if (arg.empty()) std::cerr << "llamactl " << cmd << ": missing NAME\n";
    return !arg.empty();
  };
  if (cmd == "run") return RunLocal();
  if (cmd == "fetch") {
    if (!need_arg()) return kExitUsage;
    if (absl::GetFlag(FLAGS_local)) return FetchLocal(arg);
    Cli cli;
    if (!cli.ServerReachable(absl::Seconds(2))) {
      std::cerr << "llamactl: no server at " << absl::GetFlag(FLAGS_server)
                << "; fetching locally\n";
      return FetchLocal(arg);
    }
    return cli.Fetch(arg);
  }
  Cli cli;
  if (cmd == "list") return cli.List();
  if (cmd == "status") return cli.Status(arg);
  if (cmd == "load") {
    if (!need_arg()) return kExitUsage;
    return cli.VariantRpc<v1::LoadVariantRequest>(arg, &v1::Admin::Stub::LoadVariant);
  }
  if (cmd == "unload") {
    if (!need_arg()) return kExitUsage;
    return cli.VariantRpc<v1::UnloadVariantRequest>(arg, &v1::Admin::Stub::UnloadVariant);
  }
  if (cmd == "default") {
    if (!need_arg()) return kExitUsage;
    return cli.VariantRpc<v1::SetDefaultVariantRequest>(arg,
                                                        &v1::Admin::Stub::SetDefaultVariant);
  }
  if (cmd == "rm") {
    if (!need_arg()) return kExitUsage;
    return cli.Remove(arg);
  }
  if (cmd == "generate") {
    std::string prompt = absl::StrJoin(args.begin() + 2, args.end(), " ");
    if (prompt.empty()) {
      std::cerr << "llamactl generate: missing PROMPT\n";
      return kExitUsage;
    }
    return cli.Generate(prompt);
  }
  if (cmd == "chat") return cli.Chat(absl::StrJoin(args.begin() + 2, args.end(), " "));
  std::cerr << "llamactl: unknown command '" << cmd << "'\n" << absl::ProgramUsageMessage()
            << "\n";
  return kExitUsage;
}

}  // namespace
}  // namespace llama::cli

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "llamactl: operator CLI for llamad.\n"
      "usage: llamactl [flags] COMMAND [ARGS]\n"
      "  list                      variants and their states (--output json)\n"
      "  status [NAME]             server health + variants, or one variant's details\n"
      "  fetch NAME                download a branch (progress bar); without a reachable\n"
      "                            server (or with --local) uses the fetcher directly and\n"
      "                            prints the snapshot path (--repo, --revision, --load)\n"
      "  load NAME | unload NAME | default NAME | rm NAME [--forget]\n"
      "  generate PROMPT           stream a completion (--variant, --max_new_tokens, ...)\n"
      "  chat [MESSAGE]            Llama-2 chat; interactive when stdin is a terminal\n"
      "  run --model DIR --prompt TEXT   run a local checkpoint in-process, print tok/s\n"
      "server: --server or LLAMA_SERVER (default 127.0.0.1:50051); tokens: --token /\n"
      "LLAMA_INFERENCE_TOKEN, --admin_token / LLAMA_ADMIN_TOKEN.\n",
      llama::cli::ExitCodesHelp()));
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::signal(SIGINT, [](int) { llama::cli::g_interrupted = true; });
  return llama::cli::Main(std::move(args));
}
