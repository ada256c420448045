// Server setup, apart from the handlers: ports, credentials (optional TLS), the
// Inference and Admin services, grpc.health.v1 (overall "" + one service name per
// variant), reflection, the Prometheus endpoint, and a draining shutdown.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "services/admin_service.h"
#include "services/inference_service.h"
#include "services/metrics.h"
#include "services/variant_manager.h"

namespace llama::services {

struct ServerOptions {
  std::string listen = "0.0.0.0:50051";  // host:port; port 0 picks a free one
  std::string metrics_listen;             // host:port for GET /metrics; "" = off
  std::string tls_cert, tls_key;          // PEM files; both empty = plaintext
  std::string inference_token;            // "" = Inference open
  std::string admin_token;                // "" = Admin open
};

class LlamaServer {
 public:
  // `manager` and `metrics` must outlive the server.
  LlamaServer(VariantManager* manager, Metrics* metrics, ServerOptions options);
  ~LlamaServer();  // Shutdown now if still running

  // Binds and starts serving. InvalidArgument (TLS files), Unavailable (bind failed).
  absl::Status Start();
  int port() const { return port_; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }

  // Health NOT_SERVING, new requests refused, then waits up to `grace` for in-flight
  // streams to finish before cancelling what is left. Idempotent.
  void Shutdown(absl::Duration grace);
  void Wait();

 private:
  VariantManager* manager_;
  Metrics* metrics_;
  ServerOptions options_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace llama::services
