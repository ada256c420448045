// Conversions between llama.v1 messages and engine types.
#pragma once

#include <vector>

#include "engine/chat_format.h"
#include "engine/generate.h"
#include "engine/registry.h"
#include "engine/sampler.h"
#include "llama/v1/admin.pb.h"
#include "llama/v1/inference.pb.h"

namespace llama::services {

// Zero fields mean defaults (see SamplingParameters in inference.proto).
SamplingParams SamplingFromProto(const v1::SamplingParameters& p);
std::vector<ChatMessage> DialogFromProto(
    const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages);
v1::FinishReason FinishToProto(FinishReason r);
v1::VariantState StateToProto(VariantState s);
void VariantToProto(const VariantInfo& info, v1::Variant* out);

}  // namespace llama::services
