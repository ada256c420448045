#include "services/server.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace llama::services {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  if (o.tls_cert.empty() && o.tls_key.empty()) return grpc::InsecureServerCredentials();
  if (o.tls_cert.empty() || o.tls_key.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  absl::StatusOr<std::string> cert = ReadFile(o.tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(o.tls_key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

LlamaServer::LlamaServer(VariantManager* manager, Metrics* metrics, ServerOptions options)
    : manager_(manager), metrics_(metrics), options_(std::move(options)) {}

LlamaServer::~LlamaServer() { Shutdown(absl::ZeroDuration()); }

absl::Status LlamaServer::Start() {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = Credentials(options_);
  if (!creds.ok()) return creds.status();

  inference_ = std::make_unique<InferenceService>(manager_, metrics_,
                                                  TokenAuth(options_.inference_token));
  admin_ = std::make_unique<AdminService>(manager_, metrics_, TokenAuth(options_.admin_token));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, *creds, &port_);
  builder.RegisterService(inference_.get());
  builder.RegisterService(admin_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  manager_->SetHealthSink([health](const std::string& service, bool serving) {
    health->SetServingStatus(service, serving);
  });

  if (!options_.metrics_listen.empty() && metrics_ != nullptr) {
    metrics_http_ = std::make_unique<MetricsHttpServer>(
        [this] { return metrics_->Render(manager_->Gauges()); });
    if (absl::Status s = metrics_http_->Start(options_.metrics_listen); !s.ok()) {
      Shutdown(absl::ZeroDuration());
      return s;
    }
  }
  return absl::OkStatus();
}

void LlamaServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  manager_->SetHealthSink(nullptr);
  server_->GetHealthCheckService()->Shutdown();  // everything NOT_SERVING
  inference_->StopAccepting();
  // Shutdown refuses new calls and waits for running ones until the deadline, then
  // cancels them (their handlers see IsCancelled and cancel their generations).
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  if (metrics_http_) metrics_http_->Stop();
}

void LlamaServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace llama::services
