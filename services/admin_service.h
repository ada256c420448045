// llama.v1.Admin: thin handlers over VariantManager (fetch, load, unload, default,
// delete, list). Requires the admin token when one is configured.
#pragma once

#include "grpcpp/grpcpp.h"
#include "llama/v1/admin.grpc.pb.h"
#include "services/auth.h"
#include "services/metrics.h"
#include "services/variant_manager.h"

namespace llama::services {

class AdminService final : public v1::Admin::Service {
 public:
  AdminService(VariantManager* manager, Metrics* metrics, TokenAuth auth);

  grpc::Status ListVariants(grpc::ServerContext* ctx, const v1::ListVariantsRequest* req,
                            v1::ListVariantsResponse* resp) override;
  grpc::Status GetVariant(grpc::ServerContext* ctx, const v1::GetVariantRequest* req,
                          v1::Variant* resp) override;
  grpc::Status FetchVariant(grpc::ServerContext* ctx, const v1::FetchVariantRequest* req,
                            grpc::ServerWriter<v1::FetchProgress>* writer) override;
  grpc::Status LoadVariant(grpc::ServerContext* ctx, const v1::LoadVariantRequest* req,
                           v1::Variant* resp) override;
  grpc::Status UnloadVariant(grpc::ServerContext* ctx, const v1::UnloadVariantRequest* req,
                             v1::Variant* resp) override;
  grpc::Status SetDefaultVariant(grpc::ServerContext* ctx,
                                 const v1::SetDefaultVariantRequest* req,
                                 v1::Variant* resp) override;
  grpc::Status DeleteVariant(grpc::ServerContext* ctx, const v1::DeleteVariantRequest* req,
                             v1::DeleteVariantResponse* resp) override;

 private:
  grpc::Status Finish(const std::string& variant, const char* method, const absl::Status& s);
  // Status of the variant call written into `resp` on success.
  grpc::Status Reply(const std::string& variant, const char* method,
                     const absl::StatusOr<VariantInfo>& info, v1::Variant* resp);

  VariantManager* manager_;
  Metrics* metrics_;
  TokenAuth auth_;
};

}  // namespace llama::services
