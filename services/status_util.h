// The one place where absl::Status (domain) becomes grpc::Status (wire) and back.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace llama::services {

// Same code, same message. absl and gRPC share the canonical code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace llama::services
