#include "services/inference_service.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/chat_format.h"
#include "engine/scheduler.h"
#include "services/proto_convert.h"
#include "services/status_util.h"

namespace llama::services {
namespace {

constexpr char kVariantMetadata[] = "x-model-variant";
// How often a waiting stream looks at client cancellation / deadline.
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

absl::Time DeadlineOf(const grpc::ServerContext& ctx) {
  auto d = ctx.deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

// Keeps the active-streams gauge right on every exit path.
class StreamGauge {
 public:
  StreamGauge(Metrics* m, std::string v) : m_(m), v_(std::move(v)) {
    if (m_) m_->StreamOpened(v_);
  }
  ~StreamGauge() {
    if (m_) m_->StreamClosed(v_);
  }

 private:
  Metrics* m_;
  std::string v_;
};

}  // namespace

InferenceService::InferenceService(VariantManager* manager, Metrics* metrics, TokenAuth auth)
    : manager_(manager), metrics_(metrics), auth_(std::move(auth)) {}

grpc::Status InferenceService::Finish(const std::string& variant, const char* method,
                                      const absl::Status& s) {
  if (metrics_ != nullptr) {
    metrics_->RequestFinished(variant.empty() ? "-" : variant, method,
                              absl::StatusCodeToString(s.code()));
  }
  return ToGrpcStatus(s);
}

absl::Status InferenceService::Route(grpc::ServerContext* ctx, const std::string& field,
                                     std::string* name, std::shared_ptr<Scheduler>* sched) {
  if (absl::Status s = auth_.Check(*ctx); !s.ok()) return s;
  if (!accepting_) return absl::UnavailableError("server is shutting down");
  std::string requested = field;
  if (requested.empty()) {
    auto it = ctx->client_metadata().find(kVariantMetadata);
    if (it != ctx->client_metadata().end()) {
      requested.assign(it->second.data(), it->second.size());
    }
  }
  absl::StatusOr<std::string> canonical = manager_->Resolve(requested);
  if (!canonical.ok()) return canonical.status();
  *name = *canonical;
  absl::StatusOr<std::shared_ptr<Scheduler>> s = manager_->Acquire(*name);
  if (!s.ok()) return s.status();
  *sched = *std::move(s);
  return absl::OkStatus();
}

grpc::Status InferenceService::Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  PromptBuilder build = [req](const Tokenizer& tok) -> absl::StatusOr<std::vector<int>> {
    if (!req->prompt_token_ids().empty()) {
      return std::vector<int>(req->prompt_token_ids().begin(), req->prompt_token_ids().end());
    }
    if (req->prompt().empty()) {
      return absl::InvalidArgumentError("empty prompt: set prompt or prompt_token_ids");
    }
    return tok.Encode(req->prompt(), /*add_bos=*/true);
  };
  return Stream(ctx, "Generate", req->variant(), build, req->params(), writer);
}

grpc::Status InferenceService::Chat(grpc::ServerContext* ctx, const v1::ChatRequest* req,
                                    grpc::ServerWriter<v1::GenerateResponse>* writer) {
  PromptBuilder build = [req](const Tokenizer& tok) {
    return EncodeLlama2Chat(tok, DialogFromProto(req->messages()));
  };
  return Stream(ctx, "Chat", req->variant(), build, req->params(), writer);
}

grpc::Status InferenceService::Stream(grpc::ServerContext* ctx, const char* method,
                                      const std::string& variant,
                                      const PromptBuilder& build_prompt,
                                      const v1::SamplingParameters& params,
                                      grpc::ServerWriter<v1::GenerateResponse>* writer) {
  std::string name;
  std::shared_ptr<Scheduler> sched;
  if (absl::Status s = Route(ctx, variant, &name, &sched); !s.ok()) {
    return Finish(name, method, s);
  }
  absl::StatusOr<std::vector<int>> prompt = build_prompt(sched->tokenizer());
  if (!prompt.ok()) return Finish(name, method, prompt.status());

  GenerationRequest gen;
  gen.prompt = *std::move(prompt);
  gen.params = SamplingFromProto(params);
  if (absl::Status s = ValidateSamplingParams(gen.params); !s.ok()) {
    return Finish(name, method, s);
  }
  gen.id = absl::StrCat(name, "-", next_id_.fetch_add(1));
  gen.deadline = DeadlineOf(*ctx);
  absl::StatusOr<std::shared_ptr<RequestHandle>> handle = sched->Submit(std::move(gen));
  if (!handle.ok()) return Finish(name, method, handle.status());
  StreamGauge gauge(metrics_, name);

  // Relay chunks; between chunks, notice a client that went away or a passed deadline.
  StreamChunk chunk;
  bool ended = false;
  while (true) {
    if ((*handle)->NextFor(&chunk, kPollInterval, &ended)) {
      if (chunk.finish == FinishReason::kCancelled) continue;  // status says why
      if (chunk.tokens.empty() && chunk.text.empty() && chunk.finish == FinishReason::kNone) {
        continue;
      }
      v1::GenerateResponse resp;
      resp.set_text(chunk.text);
      for (int t : chunk.tokens) resp.add_token_ids(t);
      for (float lp : chunk.logprobs) resp.add_logprobs(lp);
      resp.set_finish_reason(FinishToProto(chunk.finish));
      resp.mutable_usage()->set_prompt_tokens(chunk.prompt_tokens);
      resp.mutable_usage()->set_completion_tokens(chunk.completion_tokens);
      resp.set_variant(name);
      if (!writer->Write(resp)) {  // the client is gone
        (*handle)->Cancel();
        return Finish(name, method, absl::CancelledError("client went away"));
      }
      continue;
    }
    if (ended) break;
    if (ctx->IsCancelled()) {
      (*handle)->Cancel();
      if (absl::Now() >= DeadlineOf(*ctx)) {
        return Finish(name, method, absl::DeadlineExceededError("deadline exceeded"));
      }
      return Finish(name, method, absl::CancelledError("cancelled by the client"));
    }
  }
  return Finish(name, method, (*handle)->status());
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext* ctx, const v1::TokenizeRequest* req,
                                        v1::TokenizeResponse* resp) {
  std::string name;
  std::shared_ptr<Scheduler> sched;
  if (absl::Status s = Route(ctx, req->variant(), &name, &sched); !s.ok()) {
    return Finish(name, "Tokenize", s);
  }
  for (int id : sched->tokenizer().Encode(req->text(), req->add_bos())) resp->add_token_ids(id);
  resp->set_variant(name);
  return Finish(name, "Tokenize", absl::OkStatus());
}

grpc::Status InferenceService::CountTokens(grpc::ServerContext* ctx,
                                           const v1::CountTokensRequest* req,
                                           v1::CountTokensResponse* resp) {
  std::string name;
  std::shared_ptr<Scheduler> sched;
  if (absl::Status s = Route(ctx, req->variant(), &name, &sched); !s.ok()) {
    return Finish(name, "CountTokens", s);
  }
  size_t count = 0;
  if (!req->messages().empty()) {
    absl::StatusOr<std::vector<int>> ids =
        EncodeLlama2Chat(sched->tokenizer(), DialogFromProto(req->messages()));
    if (!ids.ok()) return Finish(name, "CountTokens", ids.status());
    count = ids->size();
  } else {
    count = sched->tokenizer().Encode(req->text(), /*add_bos=*/true).size();
  }
  resp->set_count(static_cast<uint32_t>(count));
  resp->set_context_length(static_cast<uint32_t>(sched->runner().max_context()));
  resp->set_variant(name);
  return Finish(name, "CountTokens", absl::OkStatus());
}

}  // namespace llama::services
