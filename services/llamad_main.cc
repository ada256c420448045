// llamad: the gRPC inference server. Fetches and loads the variants named by
// --variants at start, serves Inference + Admin + health + reflection, exposes
// Prometheus metrics, and on SIGTERM/SIGINT drains in-flight streams then exits.
// Every flag falls back to an environment variable (in brackets) when not given.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "engine/runner.h"
#include "fetcher/fetcher.h"
#include "services/metrics.h"
#include "services/server.h"
#include "services/variant_manager.h"

namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}
int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

}  // namespace

ABSL_FLAG(std::string, listen, Env("LLAMA_LISTEN", "0.0.0.0:50051"),
          "gRPC listen address host:port [LLAMA_LISTEN]");
ABSL_FLAG(std::string, metrics_listen, Env("LLAMA_METRICS_LISTEN", "0.0.0.0:9090"),
          "Prometheus /metrics address host:port, empty = off [LLAMA_METRICS_LISTEN]");
ABSL_FLAG(std::string, cache_dir, Env("LLAMA_CACHE_DIR", ""),
          "Hugging Face cache dir (default HF_HUB_CACHE / $HF_HOME/hub / "
          "~/.cache/huggingface/hub) [LLAMA_CACHE_DIR]");
ABSL_FLAG(std::string, hub_endpoint, Env("LLAMA_HUB_ENDPOINT", ""),
          "Hub base URL (default HF_ENDPOINT, else https://huggingface.co) [LLAMA_HUB_ENDPOINT]");
ABSL_FLAG(std::string, repo, Env("LLAMA_REPO", "TheBloke/Llama-2-7b-Chat-GPTQ"),
          "repo whose branches are the variants [LLAMA_REPO]");
ABSL_FLAG(std::string, variants, Env("LLAMA_VARIANTS", "main"),
          "comma-separated branches to fetch and load at start [LLAMA_VARIANTS]");
ABSL_FLAG(std::string, default_variant, Env("LLAMA_DEFAULT_VARIANT", ""),
          "default variant (default: the first of --variants) [LLAMA_DEFAULT_VARIANT]");
ABSL_FLAG(std::string, aliases, Env("LLAMA_ALIASES", ""),
          "comma-separated alias=variant pairs, e.g. chat=main,accurate=gptq-4bit-32g-actorder_True "
          "[LLAMA_ALIASES]");
ABSL_FLAG(std::string, backend, Env("LLAMA_BACKEND", "cpu"), "cpu | cuda [LLAMA_BACKEND]");
ABSL_FLAG(int, device, EnvInt("LLAMA_DEVICE", 0), "CUDA device index [LLAMA_DEVICE]");
ABSL_FLAG(std::string, prefill_fp16_weights, Env("LLAMA_PREFILL_FP16_WEIGHTS", "auto"),
          "CUDA backend, prefill GEMM weights: auto (fp16 copies of a variant's GPTQ weights, +13 GB for "
          "Llama-2-7B, kept when half of the GPU stays free: faster time to first token), true (always) or "
          "false (dequantized per prefill) [LLAMA_PREFILL_FP16_WEIGHTS]");
ABSL_FLAG(int, threads, EnvInt("LLAMA_THREADS", 0),
          "CPU backend threads, 0 = all cores [LLAMA_THREADS]");
ABSL_FLAG(int, max_slots, EnvInt("LLAMA_MAX_SLOTS", 8),
          "concurrent sequences per variant (KV slots) [LLAMA_MAX_SLOTS]");
ABSL_FLAG(int, max_context, EnvInt("LLAMA_MAX_CONTEXT", 0),
          "positions per sequence, 0 = the model's [LLAMA_MAX_CONTEXT]");
ABSL_FLAG(int, max_queue, EnvInt("LLAMA_MAX_QUEUE", 64),
          "requests waiting for a slot per variant; beyond -> RESOURCE_EXHAUSTED "
          "[LLAMA_MAX_QUEUE]");
ABSL_FLAG(std::string, inference_token, Env("LLAMA_INFERENCE_TOKEN", ""),
          "bearer token required by Inference RPCs, empty = open [LLAMA_INFERENCE_TOKEN]");
ABSL_FLAG(std::string, admin_token, Env("LLAMA_ADMIN_TOKEN", ""),
          "bearer token required by Admin RPCs, empty = open [LLAMA_ADMIN_TOKEN]");
ABSL_FLAG(std::string, tls_cert, Env("LLAMA_TLS_CERT", ""), "PEM certificate [LLAMA_TLS_CERT]");
ABSL_FLAG(std::string, tls_key, Env("LLAMA_TLS_KEY", ""), "PEM private key [LLAMA_TLS_KEY]");
ABSL_FLAG(int, drain_seconds, EnvInt("LLAMA_DRAIN_SECONDS", 30),
          "on SIGTERM, how long in-flight streams may run before they are cancelled "
          "[LLAMA_DRAIN_SECONDS]");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "llamad: gRPC server for Llama-2 GPTQ variants.\n"
      "  llamad --variants=main,gptq-4bit-32g-actorder_True --backend=cuda");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken by a dedicated thread (sigwait), so block them before any
  // other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<llama::Backend> backend = llama::ParseBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::cerr << "llamad: " << backend.status() << "\n";
    return 2;
  }
  llama::services::VariantManagerOptions vopts;
  vopts.repo = absl::GetFlag(FLAGS_repo);
  vopts.fetch = llama::fetch::FetchOptions::FromEnv();
  if (!absl::GetFlag(FLAGS_cache_dir).empty()) vopts.fetch.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  if (!absl::GetFlag(FLAGS_hub_endpoint).empty()) {
    vopts.fetch.endpoint = absl::GetFlag(FLAGS_hub_endpoint);
  }
  vopts.backend = *backend;
  vopts.runner.max_slots = absl::GetFlag(FLAGS_max_slots);
  vopts.runner.max_context = absl::GetFlag(FLAGS_max_context);
  vopts.runner.threads = absl::GetFlag(FLAGS_threads);
  vopts.runner.device = absl::GetFlag(FLAGS_device);
  const auto prefill_weights = llama::ParsePrefillWeights(absl::GetFlag(FLAGS_prefill_fp16_weights));
  if (!prefill_weights.ok()) {
    std::fprintf(stderr, "llamad: --prefill_fp16_weights: %s\n", prefill_weights.status().ToString().c_str());
    return 2;
  }
  vopts.runner.prefill_weights = *prefill_weights;
  vopts.max_queue = absl::GetFlag(FLAGS_max_queue);

  llama::services::Metrics metrics;
  llama::services::VariantManager manager(vopts, &metrics);

  llama::services::ServerOptions sopts;
  sopts.listen = absl::GetFlag(FLAGS_listen);
  sopts.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  sopts.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  sopts.tls_key = absl::GetFlag(FLAGS_tls_key);
  sopts.inference_token = absl::GetFlag(FLAGS_inference_token);
  sopts.admin_token = absl::GetFlag(FLAGS_admin_token);
  llama::services::LlamaServer server(&manager, &metrics, sopts);
  if (absl::Status s = server.Start(); !s.ok()) {
    std::cerr << "llamad: " << s << "\n";
    return 1;
  }
  std::cerr << "llamad: listening on " << sopts.listen << " (port " << server.port() << ")";
  if (server.metrics_port() > 0) std::cerr << ", metrics on port " << server.metrics_port();
  std::cerr << "; repo " << vopts.repo << ", backend " << absl::GetFlag(FLAGS_backend)
            << ", endpoint " << vopts.fetch.endpoint << ", cache " << vopts.fetch.cache_dir
            << std::endl;

  // Start-up fetch + load runs in the background: the server answers (health
  // NOT_SERVING, Admin RPCs) while the variants arrive.
  std::vector<std::string> variants =
      absl::StrSplit(absl::GetFlag(FLAGS_variants), ',', absl::SkipWhitespace());
  std::string default_variant = absl::GetFlag(FLAGS_default_variant);
  if (default_variant.empty() && !variants.empty()) default_variant = variants.front();
  for (const std::string& v : variants) manager.Ensure(v).IgnoreError();
  for (absl::string_view pair :
       absl::StrSplit(absl::GetFlag(FLAGS_aliases), ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    absl::Status s = manager.Ensure(kv.second);
    if (s.ok()) s = manager.registry().AddAlias(kv.second, kv.first);
    if (!s.ok()) std::cerr << "llamad: --aliases " << pair << ": " << s << "\n";
  }
  if (!default_variant.empty()) {
    if (absl::Status s = manager.Ensure(default_variant); !s.ok()) {
      std::cerr << "llamad: default variant: " << s << "\n";
    }
    manager.SetDefault(default_variant).IgnoreError();
  }
  std::atomic<bool> startup_done{false};
  std::thread startup([&manager, &startup_done, variants] {
    for (const std::string& v : variants) {
      std::cerr << "llamad: fetching + loading " << v << std::endl;
      absl::StatusOr<llama::VariantInfo> info = manager.Load(v);
      if (info.ok()) {
        std::cerr << "llamad: " << v << " ready (commit " << info->commit << ", "
                  << info->device << ")" << std::endl;
      } else {
        std::cerr << "llamad: " << v << " failed: " << info.status() << std::endl;
      }
    }
    startup_done = true;
  });

  std::thread signal_waiter([&server, &signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::cerr << "llamad: signal " << sig << ", draining in-flight streams" << std::endl;
    server.Shutdown(absl::Seconds(absl::GetFlag(FLAGS_drain_seconds)));
  });
  server.Wait();
  signal_waiter.join();
  std::cerr << "llamad: stopped" << std::endl;
  if (!startup_done) std::_Exit(0);  // a start-up download still running: just leave
  startup.join();
  return 0;
}
