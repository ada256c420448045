#include "services/client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace llama::cli {

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kExitOk;
    case grpc::StatusCode::UNAVAILABLE: return kExitUnavailable;
    case grpc::StatusCode::NOT_FOUND: return kExitNotFound;
    case grpc::StatusCode::FAILED_PRECONDITION: return kExitFailedPrecondition;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return kExitUnauthenticated;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return kExitInvalidArgument;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return kExitResourceExhausted;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return kExitDeadlineExceeded;
    case grpc::StatusCode::CANCELLED: return kExitCancelled;
    default: return kExitError;
  }
}

const char* ExitCodesHelp() {
  return "exit codes: 0 ok, 1 other error, 2 usage, 3 server unavailable, 4 not found,\n"
         "  5 failed precondition (not ready/loaded), 6 unauthenticated, 7 invalid argument,\n"
         "  8 resource exhausted (queue full), 9 deadline exceeded, 10 cancelled";
}

std::shared_ptr<grpc::Channel> Connect(const ConnectOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!o.tls_ca.empty()) {
      std::ifstream in(o.tls_ca);
      std::stringstream ss;
      ss << in.rdbuf();
      ssl.pem_root_certs = ss.str();
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(o.server, creds, args);
}

void Prepare(grpc::ClientContext* ctx, const std::string& token, absl::Duration timeout) {
  if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  if (timeout != absl::InfiniteDuration() && timeout > absl::ZeroDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

namespace {
std::string Bytes(uint64_t n) {
  if (n == 0) return "-";
  if (n >= (1ull << 30)) return absl::StrFormat("%.1f GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return absl::StrFormat("%.1f MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return absl::StrFormat("%.1f KiB", n / double(1ull << 10));
  return absl::StrCat(n, " B");
}
std::string Quant(const v1::Variant& v) {
  if (!v.has_quant()) return "-";
  return absl::StrCat(v.quant().bits(), "bit g", v.quant().group_size(),
                      v.quant().desc_act() ? " act" : "");
}
}  // namespace

std::string VariantsTable(const v1::ListVariantsResponse& list) {
  std::string out = absl::StrFormat("%-32s %-10s %-12s %-16s %-10s %s\n", "VARIANT", "STATE",
                                    "COMMIT", "QUANT", "MEMORY", "DEVICE");
  for (const v1::Variant& v : list.variants()) {
    std::string name = v.is_default() ? absl::StrCat(v.name(), " *") : v.name();
    absl::StrAppend(&out, absl::StrFormat("%-32s %-10s %-12s %-16s %-10s %s\n", name,
                                          v.state_name(), v.commit().substr(0, 10), Quant(v),
                                          Bytes(v.memory_bytes()),
                                          v.device().empty() ? "-" : v.device()));
    if (!v.error().empty()) absl::StrAppend(&out, "    error: ", v.error(), "\n");
  }
  if (!list.default_variant().empty()) absl::StrAppend(&out, "(* = default)\n");
  return out;
}

std::string VariantDetails(const v1::Variant& v) {
  std::string out;
  absl::StrAppend(&out, "name:      ", v.name(), v.is_default() ? " (default)" : "", "\n");
  if (!v.aliases().empty()) {
    absl::StrAppend(&out, "aliases:  ");
    for (const auto& a : v.aliases()) absl::StrAppend(&out, " ", a);
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "state:     ", v.state_name(), v.serving() ? " (serving)" : "", "\n");
  absl::StrAppend(&out, "repo:      ", v.repo(), "@", v.branch(), "\n");
  absl::StrAppend(&out, "commit:    ", v.commit().empty() ? "-" : v.commit(), "\n");
  if (!v.pending_commit().empty()) {
    absl::StrAppend(&out, "pending:   ", v.pending_commit(), "\n");
  }
  absl::StrAppend(&out, "snapshot:  ", v.snapshot_dir().empty() ? "-" : v.snapshot_dir(), "\n");
  absl::StrAppend(&out, "quant:     ", Quant(v), "\n");
  absl::StrAppend(&out, "memory:    ", Bytes(v.memory_bytes()), "\n");
  absl::StrAppend(&out, "device:    ", v.device().empty() ? "-" : v.device(), "\n");
  if (!v.error().empty()) absl::StrAppend(&out, "error:     ", v.error(), "\n");
  return out;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, opts).ok()) return "{}";
  return out;
}

}  // namespace llama::cli
