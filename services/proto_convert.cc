#include "services/proto_convert.h"

namespace llama::services {

SamplingParams SamplingFromProto(const v1::SamplingParameters& p) {
  SamplingParams s;
  if (p.max_new_tokens() > 0) s.max_new_tokens = static_cast<int>(p.max_new_tokens());
  s.temperature = p.temperature();
  if (p.top_p() != 0.0f) s.top_p = p.top_p();
  s.top_k = static_cast<int>(p.top_k());
  if (p.repetition_penalty() != 0.0f) s.repetition_penalty = p.repetition_penalty();
  s.seed = p.seed();
  s.stop.assign(p.stop().begin(), p.stop().end());
  s.logprobs = p.logprobs();
  return s;
}

std::vector<ChatMessage> DialogFromProto(
    const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages) {
  std::vector<ChatMessage> dialog;
  dialog.reserve(messages.size());
  for (const v1::ChatMessage& m : messages) dialog.push_back({m.role(), m.content()});
  return dialog;
}

v1::FinishReason FinishToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    default: return v1::FINISH_REASON_UNSPECIFIED;
  }
}

v1::VariantState StateToProto(VariantState s) {
  switch (s) {
    case VariantState::kAbsent: return v1::VARIANT_STATE_ABSENT;
    case VariantState::kFetching: return v1::VARIANT_STATE_FETCHING;
    case VariantState::kFetched: return v1::VARIANT_STATE_FETCHED;
    case VariantState::kLoading: return v1::VARIANT_STATE_LOADING;
    case VariantState::kReady: return v1::VARIANT_STATE_READY;
    case VariantState::kUnloading: return v1::VARIANT_STATE_UNLOADING;
    case VariantState::kFailed: return v1::VARIANT_STATE_FAILED;
  }
  return v1::VARIANT_STATE_UNSPECIFIED;
}

void VariantToProto(const VariantInfo& info, v1::Variant* out) {
  out->set_name(info.name);
  for (const auto& a : info.aliases) out->add_aliases(a);
  out->set_state(StateToProto(info.state));
  out->set_state_name(VariantStateName(info.state));
  out->set_repo(info.repo);
  out->set_branch(info.branch);
  out->set_commit(info.commit);
  out->set_pending_commit(info.pending_commit);
  out->set_snapshot_dir(info.snapshot_dir);
  if (info.quant) {
    v1::QuantSettings* q = out->mutable_quant();
    q->set_bits(info.quant->bits);
    q->set_group_size(info.quant->group_size);
    q->set_desc_act(info.quant->desc_act);
    q->set_sym(info.quant->sym);
    q->set_checkpoint_format(info.quant->checkpoint_format);
  }
  out->set_memory_bytes(info.memory_bytes);
  out->set_device(info.device);
  out->set_error(info.error);
  out->set_fetch_bytes_done(info.fetch_bytes_done);
  out->set_fetch_bytes_total(info.fetch_bytes_total);
  out->set_serving(info.serving);
  out->set_is_default(info.is_default);
}

}  // namespace llama::services
