#include "services/admin_service.h"

#include <atomic>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/proto_convert.h"
#include "services/status_util.h"

namespace llama::services {

AdminService::AdminService(VariantManager* manager, Metrics* metrics, TokenAuth auth)
    : manager_(manager), metrics_(metrics), auth_(std::move(auth)) {}

grpc::Status AdminService::Finish(const std::string& variant, const char* method,
                                  const absl::Status& s) {
  if (metrics_ != nullptr) {
    metrics_->RequestFinished(variant.empty() ? "-" : variant, method,
                              absl::StatusCodeToString(s.code()));
  }
  return ToGrpcStatus(s);
}

grpc::Status AdminService::Reply(const std::string& variant, const char* method,
                                 const absl::StatusOr<VariantInfo>& info, v1::Variant* resp) {
  if (info.ok()) VariantToProto(*info, resp);
  return Finish(variant, method, info.status());
}

grpc::Status AdminService::ListVariants(grpc::ServerContext* ctx, const v1::ListVariantsRequest*,
                                        v1::ListVariantsResponse* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) return Finish("", "ListVariants", s);
  for (const VariantInfo& info : manager_->List()) VariantToProto(info, resp->add_variants());
  resp->set_default_variant(manager_->default_name());
  return Finish("", "ListVariants", absl::OkStatus());
}

grpc::Status AdminService::GetVariant(grpc::ServerContext* ctx, const v1::GetVariantRequest* req,
                                      v1::Variant* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) return Finish(req->name(), "GetVariant", s);
  return Reply(req->name(), "GetVariant", manager_->Get(req->name()), resp);
}

grpc::Status AdminService::FetchVariant(grpc::ServerContext* ctx,
                                        const v1::FetchVariantRequest* req,
                                        grpc::ServerWriter<v1::FetchProgress>* writer) {
  const std::string& name = req->name();
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) return Finish(name, "FetchVariant", s);
  if (name.empty()) {
    return Finish(name, "FetchVariant", absl::InvalidArgumentError("variant name is empty"));
  }
  // The fetch runs on this thread; progress is written from the fetcher's callback
  // (serialized by `mu`) and the client's cancellation stops the download.
  std::atomic<bool> cancel{false};
  absl::Mutex mu;
  auto on_progress = [&](const fetch::Progress& p) {
    if (ctx->IsCancelled()) cancel = true;
    v1::FetchProgress msg;
    for (const auto& f : p.files) {
      if (f.done < f.total) {
        msg.set_file(f.path);
        break;
      }
    }
    msg.set_bytes_done(p.done);
    msg.set_bytes_total(p.total);
    msg.set_files_done(p.files_done);
    msg.set_files_total(p.files_total);
    absl::MutexLock lock(&mu);
    if (!writer->Write(msg)) cancel = true;
  };
  absl::StatusOr<VariantInfo> info =
      manager_->Fetch(name, req->repo(), req->revision(), on_progress, &cancel);
  if (info.ok() && req->load()) info = manager_->Load(info->name);
  if (!info.ok()) return Finish(name, "FetchVariant", info.status());
  v1::FetchProgress last;
  last.set_done(true);
  last.set_commit(info->commit);
  last.set_snapshot_dir(info->snapshot_dir);
  last.set_bytes_done(info->fetch_bytes_done);
  last.set_bytes_total(info->fetch_bytes_total);
  VariantToProto(*info, last.mutable_variant());
  absl::MutexLock lock(&mu);
  writer->Write(last);
  return Finish(name, "FetchVariant", absl::OkStatus());
}

grpc::Status AdminService::LoadVariant(grpc::ServerContext* ctx,
                                       const v1::LoadVariantRequest* req, v1::Variant* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) return Finish(req->name(), "LoadVariant", s);
  return Reply(req->name(), "LoadVariant", manager_->Load(req->name()), resp);
}

grpc::Status AdminService::UnloadVariant(grpc::ServerContext* ctx,
                                         const v1::UnloadVariantRequest* req, v1::Variant* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) {
    return Finish(req->name(), "UnloadVariant", s);
  }
  return Reply(req->name(), "UnloadVariant", manager_->Unload(req->name()), resp);
}

grpc::Status AdminService::SetDefaultVariant(grpc::ServerContext* ctx,
                                             const v1::SetDefaultVariantRequest* req,
                                             v1::Variant* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) {
    return Finish(req->name(), "SetDefaultVariant", s);
  }
  return Reply(req->name(), "SetDefaultVariant", manager_->SetDefault(req->name()), resp);
}

grpc::Status AdminService::DeleteVariant(grpc::ServerContext* ctx,
                                         const v1::DeleteVariantRequest* req,
                                         v1::DeleteVariantResponse* resp) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) {
    return Finish(req->name(), "DeleteVariant", s);
  }
  absl::StatusOr<int64_t> bytes = manager_->Delete(req->name(), req->forget());
  if (bytes.ok()) resp->set_bytes_freed(*bytes);
  return Finish(req->name(), "DeleteVariant", bytes.status());
}

}  // namespace llama::services
