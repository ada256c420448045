// Client-side helpers of llamactl: connecting (TLS, bearer tokens), exit codes that
// scripts can rely on, and rendering variants as a table or JSON.
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "llama/v1/admin.pb.h"

namespace llama::cli {

// Exit codes of llamactl (documented in its usage text).
enum ExitCode {
  kExitOk = 0,
  kExitError = 1,             // anything else
  kExitUsage = 2,             // bad command line
  kExitUnavailable = 3,       // server unreachable / shutting down
  kExitNotFound = 4,          // unknown variant, repo or revision
  kExitFailedPrecondition = 5,  // variant not ready / loaded / busy
  kExitUnauthenticated = 6,   // missing or wrong token
  kExitInvalidArgument = 7,   // bad parameters, prompt too long
  kExitResourceExhausted = 8, // queue full
  kExitDeadlineExceeded = 9,  // --timeout passed
  kExitCancelled = 10,        // interrupted
};
int ExitCodeFor(grpc::StatusCode code);
const char* ExitCodesHelp();

struct ConnectOptions {
  std::string server = "127.0.0.1:50051";
  bool tls = false;
  std::string tls_ca;    // PEM roots file; empty = system roots
  std::string token;     // inference bearer token
  std::string admin_token;
};

std::shared_ptr<grpc::Channel> Connect(const ConnectOptions& o);
// Adds `authorization: Bearer <token>` (when non-empty) and the deadline (when finite).
void Prepare(grpc::ClientContext* ctx, const std::string& token, absl::Duration timeout);

std::string VariantsTable(const v1::ListVariantsResponse& list);
std::string VariantDetails(const v1::Variant& v);
// Proto -> JSON (proto3 JSON mapping, fields with default values included).
std::string ToJson(const google::protobuf::Message& m);

}  // namespace llama::cli
