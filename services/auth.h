// Bearer-token authentication from gRPC metadata (`authorization: Bearer <token>`).
// Inference and admin RPCs have separate tokens; an empty token disables the check.
// grpc.health.v1 and reflection never call this (they stay open).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"

namespace llama::services {

class TokenAuth {
 public:
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}
  // Unauthenticated when the token is required and missing or wrong.
  absl::Status Check(const grpc::ServerContext& ctx) const;
  bool enabled() const { return !token_.empty(); }

 private:
  std::string token_;
};

}  // namespace llama::services
