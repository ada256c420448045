// Shared harness of the services tests: a local hub (tests/hub/hub.py) serving the
// stories260K fixture branches as TheBloke/Llama-2-7b-Chat-GPTQ, an in-process llamad
// (VariantManager + LlamaServer on 127.0.0.1, free ports) fetching from it into a temp
// cache, stubs, a /metrics scraper, and a deliberately slow runner for tests that need
// streams to be mid-flight.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "engine/registry.h"
#include "engine/runner.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "llama/v1/admin.grpc.pb.h"
#include "llama/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/metrics.h"
#include "services/server.h"
#include "services/variant_manager.h"
#include "tests/common/hub_process.h"

namespace llama::services::testing {

namespace fs = std::filesystem;

using ::llama::testing::Branches;
using ::llama::testing::kRepo;
using ::llama::testing::ReadFile;

inline std::string FixturesDir() {
  if (const char* env = std::getenv("LLAMA_FIXTURES_DIR"); env && *env) return env;
  return LLAMA_FIXTURES_DIR;
}
inline std::string FixtureDir(const std::string& branch) {
  return FixturesDir() + "/stories260K-GPTQ/" + branch;
}
inline const nlohmann::json& References() {
  static const nlohmann::json refs = nlohmann::json::parse(
      ReadFile(FixturesDir() + "/stories260K-reference/references.json"))["references"];
  return refs;
}
// "Once upon a time" with BOS, and the 32 greedy tokens that follow for `branch`.
inline const std::vector<int> kOnceUponATime = {1, 403, 407, 261, 378};
inline std::vector<int> ReferenceContinuation(const std::string& branch) {
  std::vector<int> all = References()[branch]["greedy_once_upon_a_time_32"].get<std::vector<int>>();
  return std::vector<int>(all.begin() + kOnceUponATime.size(), all.end());
}

// A fresh temp dir (services_test_XXXXXX), removed on destruction.
class TempDir : public ::llama::testing::TempDir {
 public:
  TempDir() : ::llama::testing::TempDir("services_test") {}
};

// Runs `cmd` through the shell and returns its stdout; *exit_code is its exit status, or
// -1 when it could not be started or did not exit normally.
inline std::string RunCommand(const std::string& cmd, int* exit_code) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// A copy of the main fixture whose model.safetensors is cut in half.
inline std::string MakeCorruptCopy(const std::string& parent) {
  std::string dir = parent + "/corrupt";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(FixtureDir("main"))) {
    fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
  }
  std::string model = dir + "/model.safetensors";
  fs::resize_file(model, fs::file_size(model) / 2);
  return dir;
}

// tests/hub/hub.py serving `branches` (name -> dir) of kRepo on loopback.
class Hub {
 public:
  explicit Hub(const std::map<std::string, std::string>& branches)
      : process_({"--repo", ::llama::testing::HubRepoSpec(kRepo, {branches.begin(),
                                                                   branches.end()})},
                 std::chrono::seconds(20), /*quiet_stderr=*/true, "services_test") {}
  static std::map<std::string, std::string> FixtureBranches() {
    std::map<std::string, std::string> m;
    for (const auto& b : Branches()) m[b] = FixtureDir(b);
    return m;
  }
  bool ok() const { return process_.started(); }
  std::string endpoint() const { return process_.info().value("endpoint", ""); }

 private:
  ::llama::testing::HubProcess process_;
};

// Wraps a runner and sleeps before every decode step, so that streams stay in flight
// long enough to be cancelled, unloaded under, or to fill the queue.
class SlowRunner : public ModelRunner {
 public:
  SlowRunner(std::unique_ptr<ModelRunner> inner, absl::Duration delay)
      : inner_(std::move(inner)), delay_(delay) {}
  const ModelConfig& config() const override { return inner_->config(); }
  int max_slots() const override { return inner_->max_slots(); }
  int max_context() const override { return inner_->max_context(); }
  std::string device_name() const override { return "slow " + inner_->device_name(); }
  size_t memory_bytes() const override { return inner_->memory_bytes(); }
  absl::Status Prefill(int slot, int start_pos, absl::Span<const int32_t> tokens,
                       absl::Span<float> logits, bool all_logits) override {
    return inner_->Prefill(slot, start_pos, tokens, logits, all_logits);
  }
  absl::Status Decode(absl::Span<const int> slots, absl::Span<const int> positions,
                      absl::Span<const int32_t> tokens, absl::Span<float> logits) override {
    absl::SleepFor(delay_);
    return inner_->Decode(slots, positions, tokens, logits);
  }

 private:
  std::unique_ptr<ModelRunner> inner_;
  absl::Duration delay_;
};

struct ServerConfig {
  int max_slots = 8;
  int max_queue = 64;
  std::string inference_token, admin_token;
  std::string tls_cert, tls_key;  // PEM files: serve TLS, clients trust tls_cert
};

// An in-process llamad on 127.0.0.1 (free gRPC and metrics ports), fetching from `hub`
// into its own temp cache.
class TestServer {
 public:
  TestServer(const Hub& hub, ServerConfig cfg = {}) : cfg_(cfg) {
    VariantManagerOptions vo;
    vo.repo = kRepo;
    vo.fetch = fetch::FetchOptions::FromEnv();
    vo.fetch.endpoint = hub.endpoint();
    vo.fetch.cache_dir = cache_.path();
    vo.fetch.token.clear();
    vo.fetch.offline = false;
    vo.backend = Backend::kCpu;
    vo.runner.max_slots = cfg.max_slots;
    vo.runner.threads = 2;
    vo.max_queue = cfg.max_queue;
    manager_ = std::make_unique<VariantManager>(vo, &metrics_);
    ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.metrics_listen = "127.0.0.1:0";
    so.inference_token = cfg.inference_token;
    so.admin_token = cfg.admin_token;
    so.tls_cert = cfg.tls_cert;
    so.tls_key = cfg.tls_key;
    server_ = std::make_unique<LlamaServer>(manager_.get(), &metrics_, so);
    start_status_ = server_->Start();
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!cfg.tls_cert.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadFile(cfg.tls_cert);
      creds = grpc::SslCredentials(ssl);
    }
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()), creds);
    inference_ = v1::Inference::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }
  ~TestServer() {
    server_->Shutdown(absl::Seconds(5));
    server_.reset();
    manager_.reset();
  }

  const absl::Status& start_status() const { return start_status_; }
  VariantManager& manager() { return *manager_; }
  LlamaServer& server() { return *server_; }
  v1::Inference::Stub& inference() { return *inference_; }
  v1::Admin::Stub& admin() { return *admin_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }
  const std::string& cache_dir() const { return cache_.path(); }

  // A context with the configured tokens (inference or admin) and a deadline.
  std::unique_ptr<grpc::ClientContext> Ctx(bool admin = false,
                                           absl::Duration timeout = absl::Seconds(60)) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    const std::string& tok = admin ? cfg_.admin_token : cfg_.inference_token;
    if (!tok.empty()) ctx->AddMetadata("authorization", "Bearer " + tok);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return ctx;
  }

  // Fetch through the Admin RPC (progress stream) then load; returns the final status.
  grpc::Status FetchAndLoad(const std::string& name, int* progress_messages = nullptr) {
    v1::FetchVariantRequest req;
    req.set_name(name);
    req.set_load(true);
    auto ctx = Ctx(true);
    auto reader = admin_->FetchVariant(ctx.get(), req);
    v1::FetchProgress msg;
    int n = 0;
    bool done = false;
    while (reader->Read(&msg)) {
      ++n;
      done = done || msg.done();
    }
    grpc::Status s = reader->Finish();
    if (progress_messages) *progress_messages = n;
    if (s.ok() && !done) return grpc::Status(grpc::StatusCode::INTERNAL, "no final message");
    return s;
  }

  // Loads `name` as a SlowRunner over the main fixture (registered if new).
  absl::Status LoadSlow(const std::string& name, absl::Duration delay, int max_slots,
                        int max_queue) {
    if (absl::Status s = manager_->Ensure(name, kRepo, "main"); !s.ok()) return s;
    SchedulerOptions so = manager_->SchedulerOptionsFor(name);
    so.max_queue = max_queue;
    ModelLoader loader = [delay, max_slots]() -> absl::StatusOr<LoadedModel> {
      RunnerOptions ro;
      ro.max_slots = max_slots;
      ro.threads = 1;
      absl::StatusOr<LoadedModel> m = LoadModelFromDir(FixtureDir("main"), Backend::kCpu, ro);
      if (!m.ok()) return m.status();
      m->runner = std::make_unique<SlowRunner>(std::move(m->runner), delay);
      return m;
    };
    return manager_->registry().LoadWith(name, FixtureDir("main"), "slow", loader, so);
  }

  // The value of one series on /metrics, e.g. Metric("llama_queue_depth", "main"); -1
  // when absent.
  double Metric(const std::string& name, const std::string& variant) const {
    httplib::Client cli("127.0.0.1", server_->metrics_port());
    auto res = cli.Get("/metrics");
    if (!res || res->status != 200) return -1;
    std::string prefix = absl::StrCat(name, "{variant=\"", variant, "\"} ");
    for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
      if (absl::StartsWith(line, prefix)) {
        double v = 0;
        if (absl::SimpleAtod(line.substr(prefix.size()), &v)) return v;
      }
    }
    return -1;
  }
  std::string MetricsText() const {
    httplib::Client cli("127.0.0.1", server_->metrics_port());
    auto res = cli.Get("/metrics");
    return res ? res->body : "";
  }

  // Waits (bounded) until the variant has nothing queued, running or streaming.
  bool WaitIdle(const std::string& variant, absl::Duration limit = absl::Seconds(60)) const {
    absl::Time end = absl::Now() + limit;
    while (absl::Now() < end) {
      if (Metric("llama_queue_depth", variant) == 0 &&
          Metric("llama_running_sequences", variant) == 0 &&
          Metric("llama_active_streams", variant) == 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Status s = health_->Check(&ctx, req, &resp);
    if (!s.ok()) return grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN;
    return resp.status();
  }

 private:
  ServerConfig cfg_;
  TempDir cache_;
  Metrics metrics_;
  std::unique_ptr<VariantManager> manager_;
  std::unique_ptr<LlamaServer> server_;
  absl::Status start_status_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// A hub and an in-process server shared by every test of a suite: derive as
// `class FooTest : public SharedServerTest<FooTest>` and call StartServer from
// SetUpTestSuite. TearDownTestSuite stops both.
template <typename Suite>
class SharedServerTest : public ::testing::Test {
 protected:
  // Starts the hub and the server, then fetches and loads each of `variants` through the
  // Admin RPC. Failures are fatal: callers check HasFatalFailure() before going on.
  static void StartServer(const std::vector<std::string>& variants = {}) {
    hub_ = new Hub(Hub::FixtureBranches());
    ASSERT_TRUE(hub_->ok()) << "hub did not start";
    server_ = new TestServer(*hub_);
    ASSERT_TRUE(server_->start_status().ok()) << server_->start_status();
    for (const std::string& b : variants) {
      grpc::Status s = server_->FetchAndLoad(b);
      ASSERT_TRUE(s.ok()) << b << ": " << s.error_message();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete hub_;
    hub_ = nullptr;
  }
  static inline Hub* hub_ = nullptr;
  static inline TestServer* server_ = nullptr;
};

// The whole of one stream.
struct StreamResult {
  grpc::Status status;
  std::vector<int> tokens;
  std::string text;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  int chunks = 0;
  std::string variant;
  v1::Usage usage;
};

template <typename Reader>
StreamResult ReadAll(Reader& reader) {
  StreamResult r;
  v1::GenerateResponse chunk;
  while (reader->Read(&chunk)) {
    ++r.chunks;
    r.tokens.insert(r.tokens.end(), chunk.token_ids().begin(), chunk.token_ids().end());
    r.text += chunk.text();
    if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) r.finish = chunk.finish_reason();
    r.variant = chunk.variant();
    r.usage = chunk.usage();
  }
  r.status = reader->Finish();
  return r;
}

inline v1::GenerateRequest GreedyRequest(const std::string& variant, int max_new_tokens = 32) {
  v1::GenerateRequest req;
  req.set_variant(variant);
  for (int t : kOnceUponATime) req.add_prompt_token_ids(t);
  req.mutable_params()->set_max_new_tokens(max_new_tokens);
  return req;
}

inline StreamResult Generate(TestServer& srv, const v1::GenerateRequest& req,
                             absl::Duration timeout = absl::Seconds(60)) {
  auto ctx = srv.Ctx(false, timeout);
  auto reader = srv.inference().Generate(ctx.get(), req);
  return ReadAll(reader);
}

}  // namespace llama::services::testing
