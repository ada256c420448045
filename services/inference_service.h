// llama.v1.Inference: each RPC turns its request into a prompt and a Scheduler
// submission on the routed variant, then relays the stream. Routing: request field
// `variant`, else metadata `x-model-variant`, else the default variant.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer.h"
#include "grpcpp/grpcpp.h"
#include "llama/v1/inference.grpc.pb.h"
#include "services/auth.h"
#include "services/metrics.h"
#include "services/variant_manager.h"

namespace llama::services {

class InferenceService final : public v1::Inference::Service {
 public:
  InferenceService(VariantManager* manager, Metrics* metrics, TokenAuth auth);

  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Chat(grpc::ServerContext* ctx, const v1::ChatRequest* req,
                    grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* ctx, const v1::TokenizeRequest* req,
                        v1::TokenizeResponse* resp) override;
  grpc::Status CountTokens(grpc::ServerContext* ctx, const v1::CountTokensRequest* req,
                           v1::CountTokensResponse* resp) override;

  // New requests get UNAVAILABLE; running streams continue.
  void StopAccepting() { accepting_ = false; }

 private:
  using PromptBuilder = std::function<absl::StatusOr<std::vector<int>>(const Tokenizer&)>;

  // The shared body of Generate and Chat.
  grpc::Status Stream(grpc::ServerContext* ctx, const char* method, const std::string& variant,
                      const PromptBuilder& build_prompt, const v1::SamplingParameters& params,
                      grpc::ServerWriter<v1::GenerateResponse>* writer);
  // Auth + routing: the canonical variant name and its scheduler.
  absl::Status Route(grpc::ServerContext* ctx, const std::string& field, std::string* name,
                     std::shared_ptr<Scheduler>* sched);
  grpc::Status Finish(const std::string& variant, const char* method, const absl::Status& s);

  VariantManager* manager_;
  Metrics* metrics_;
  TokenAuth auth_;
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace llama::services
