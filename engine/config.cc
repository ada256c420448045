#include "engine/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace llama {
namespace {

using json = nlohmann::json;

// Reads a JSON object file. NotFound when missing (callers decide if that is an error).
absl::StatusOr<json> ReadJsonObject(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": file not found"));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": top level is not a JSON object"));
  }
  return j;
}

absl::Status FieldError(const std::string& file, const std::string& field,
                        const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": field ", field, " ", what));
}

// Optional typed getters: leave *out untouched when absent or null.
absl::Status GetInt(const json& j, const std::string& file, const std::string& key, int* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  if (!j[key].is_number_integer()) return FieldError(file, key, "is not an integer");
  const int64_t v = j[key].get<int64_t>();
  if (v < INT32_MIN || v > INT32_MAX) return FieldError(file, key, "is out of range");
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

absl::Status GetFloat(const json& j, const std::string& file, const std::string& key, float* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  if (!j[key].is_number()) return FieldError(file, key, "is not a number");
  *out = j[key].get<float>();
  return absl::OkStatus();
}

absl::Status GetBool(const json& j, const std::string& file, const std::string& key, bool* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  if (!j[key].is_boolean()) return FieldError(file, key, "is not a boolean");
  *out = j[key].get<bool>();
  return absl::OkStatus();
}

absl::Status GetString(const json& j, const std::string& file, const std::string& key,
                       std::string* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  if (!j[key].is_string()) return FieldError(file, key, "is not a string");
  *out = j[key].get<std::string>();
  return absl::OkStatus();
}

absl::Status RequirePositive(const json& j, const std::string& file, const std::string& key,
                             int* out) {
  if (!j.contains(key) || j[key].is_null()) {
    return FieldError(file, key, "is required but missing");
  }
  if (auto s = GetInt(j, file, key, out); !s.ok()) return s;
  if (*out <= 0) return FieldError(file, key, absl::StrCat("must be positive, got ", *out));
  return absl::OkStatus();
}

#define LLAMA_RETURN_IF_ERROR(expr)        \
  do {                                     \
    if (auto _s = (expr); !_s.ok()) return _s; \
  } while (0)

absl::StatusOr<QuantConfig> ParseQuant(const json& q, const std::string& file) {
  QuantConfig c;
  std::string method;
  LLAMA_RETURN_IF_ERROR(GetString(q, file, "quant_method", &method));
  if (!method.empty() && method != "gptq") {
    return absl::FailedPreconditionError(absl::StrCat(
        file, ": field quant_method is \"", method, "\"; only \"gptq\" is supported"));
  }
  if (!q.contains("bits")) return FieldError(file, "bits", "is required but missing");
  LLAMA_RETURN_IF_ERROR(GetInt(q, file, "bits", &c.bits));
  if (c.bits != 4) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": field bits is ", c.bits, "; only 4-bit GPTQ is supported"));
  }
  LLAMA_RETURN_IF_ERROR(GetInt(q, file, "group_size", &c.group_size));
  if (c.group_size == 0 || c.group_size < -1) {
    return FieldError(file, "group_size", absl::StrCat("must be -1 or positive, got ",
                                                       c.group_size));
  }
  LLAMA_RETURN_IF_ERROR(GetBool(q, file, "desc_act", &c.desc_act));
  LLAMA_RETURN_IF_ERROR(GetBool(q, file, "sym", &c.sym));
  LLAMA_RETURN_IF_ERROR(GetBool(q, file, "static_groups", &c.static_groups));
  LLAMA_RETURN_IF_ERROR(GetString(q, file, "checkpoint_format", &c.checkpoint_format));
  LLAMA_RETURN_IF_ERROR(GetString(q, file, "model_file_base_name", &c.model_file_base_name));
  if (c.model_file_base_name.empty()) c.model_file_base_name = "model";
  if (c.model_file_base_name.find('/') != std::string::npos) {
    return FieldError(file, "model_file_base_name", "must be a plain file name");
  }
  if (c.checkpoint_format != "gptq" && c.checkpoint_format != "gptq_v2") {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": field checkpoint_format is \"", c.checkpoint_format,
                     "\"; supported: \"gptq\" (v1) and \"gptq_v2\""));
  }
  if (!c.sym && c.checkpoint_format == "gptq") {
    return absl::FailedPreconditionError(absl::StrCat(
        file, ": sym=false with checkpoint_format \"gptq\" (v1) is not supported: v1 stores "
              "zero - 1, which overflows the 4-bit field for zero point 0 (AutoGPTQ v1 "
              "asymmetric bug); re-export the checkpoint as gptq_v2"));
  }
  return c;
}

}  // namespace

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& dir) {
  const std::string file = dir + "/config.json";
  auto jr = ReadJsonObject(file);
  if (!jr.ok()) return jr.status();
  const json& j = *jr;
  ModelConfig c;

  if (j.contains("architectures") && !j["architectures"].is_null()) {
    if (!j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string()) {
      return FieldError(file, "architectures", "must be a non-empty list of strings");
    }
    c.architecture = j["architectures"][0].get<std::string>();
    if (c.architecture != "LlamaForCausalLM") {
      return absl::FailedPreconditionError(absl::StrCat(
          file, ": field architectures is \"", c.architecture,
          "\"; only LlamaForCausalLM is supported"));
    }
  }
  if (j.contains("model_type")) {
    std::string mt;
    LLAMA_RETURN_IF_ERROR(GetString(j, file, "model_type", &mt));
    if (mt != "llama") {
      return absl::FailedPreconditionError(absl::StrCat(
          file, ": field model_type is \"", mt, "\"; only \"llama\" is supported"));
    }
  } else if (!j.contains("architectures")) {
    return FieldError(file, "model_type", "is required (neither model_type nor architectures set)");
  }

  LLAMA_RETURN_IF_ERROR(RequirePositive(j, file, "hidden_size", &c.hidden_size));
  LLAMA_RETURN_IF_ERROR(RequirePositive(j, file, "intermediate_size", &c.intermediate_size));
  LLAMA_RETURN_IF_ERROR(RequirePositive(j, file, "num_hidden_layers", &c.num_hidden_layers));
  LLAMA_RETURN_IF_ERROR(RequirePositive(j, file, "num_attention_heads", &c.num_attention_heads));
  LLAMA_RETURN_IF_ERROR(RequirePositive(j, file, "vocab_size", &c.vocab_size));
  c.num_key_value_heads = c.num_attention_heads;
  LLAMA_RETURN_IF_ERROR(GetInt(j, file, "num_key_value_heads", &c.num_key_value_heads));
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError(file, "num_key_value_heads",
                      absl::StrCat("must divide num_attention_heads (", c.num_attention_heads,
                                   "), got ", c.num_key_value_heads));
  }
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    LLAMA_RETURN_IF_ERROR(GetInt(j, file, "head_dim", &c.head_dim));
    if (c.head_dim <= 0) return FieldError(file, "head_dim", "must be positive");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return FieldError(file, "hidden_size",
                        absl::StrCat(c.hidden_size, " is not divisible by num_attention_heads ",
                                     c.num_attention_heads, " and head_dim is not given"));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) {
    return FieldError(file, "head_dim", absl::StrCat("must be even for RoPE, got ", c.head_dim));
  }
  LLAMA_RETURN_IF_ERROR(GetInt(j, file, "max_position_embeddings", &c.max_position_embeddings));
  if (c.max_position_embeddings <= 0) {
    return FieldError(file, "max_position_embeddings", "must be positive");
  }
  LLAMA_RETURN_IF_ERROR(GetFloat(j, file, "rms_norm_eps", &c.rms_norm_eps));
  LLAMA_RETURN_IF_ERROR(GetFloat(j, file, "rope_theta", &c.rope_theta));
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": field rope_scaling is set; RoPE scaling is not supported"));
  }
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    std::string act;
    LLAMA_RETURN_IF_ERROR(GetString(j, file, "hidden_act", &act));
    if (act != "silu") {
      return absl::FailedPreconditionError(
          absl::StrCat(file, ": field hidden_act is \"", act, "\"; only silu is supported"));
    }
  }
  bool bias = false;
  LLAMA_RETURN_IF_ERROR(GetBool(j, file, "attention_bias", &bias));
  if (bias) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": field attention_bias is true; not supported"));
  }
  LLAMA_RETURN_IF_ERROR(GetBool(j, file, "tie_word_embeddings", &c.tie_word_embeddings));
  LLAMA_RETURN_IF_ERROR(GetInt(j, file, "bos_token_id", &c.bos_token_id));
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
    if (j["eos_token_id"].empty() || !j["eos_token_id"][0].is_number_integer()) {
      return FieldError(file, "eos_token_id", "must be an integer or a list of integers");
    }
    c.eos_token_id = j["eos_token_id"][0].get<int>();
  } else {
    LLAMA_RETURN_IF_ERROR(GetInt(j, file, "eos_token_id", &c.eos_token_id));
  }

  // Quantization: quantize_config.json wins over config.json's quantization_config.
  const std::string qfile = dir + "/quantize_config.json";
  std::error_code ec;
  if (std::filesystem::exists(qfile, ec)) {
    auto q = ReadJsonObject(qfile);
    if (!q.ok()) return q.status();
    auto qc = ParseQuant(*q, qfile);
    if (!qc.ok()) return qc.status();
    c.quant = *qc;
  } else if (j.contains("quantization_config") && !j["quantization_config"].is_null()) {
    if (!j["quantization_config"].is_object()) {
      return FieldError(file, "quantization_config", "is not an object");
    }
    auto qc = ParseQuant(j["quantization_config"], file + " (quantization_config)");
    if (!qc.ok()) return qc.status();
    c.quant = *qc;
  }
  return c;
}

absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& dir) {
  const std::string file = dir + "/generation_config.json";
  GenerationConfig g;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return g;
  auto jr = ReadJsonObject(file);
  if (!jr.ok()) return jr.status();
  const json& j = *jr;
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) {
      g.eos_token_ids.push_back(e.get<int>());
    } else if (e.is_array()) {
      for (const auto& v : e) {
        if (!v.is_number_integer()) {
          return FieldError(file, "eos_token_id", "list holds a non-integer");
        }
        g.eos_token_ids.push_back(v.get<int>());
      }
    } else {
      return FieldError(file, "eos_token_id", "must be an integer or a list of integers");
    }
  }
  LLAMA_RETURN_IF_ERROR(GetFloat(j, file, "temperature", &g.temperature));
  LLAMA_RETURN_IF_ERROR(GetFloat(j, file, "top_p", &g.top_p));
  LLAMA_RETURN_IF_ERROR(GetInt(j, file, "top_k", &g.top_k));
  LLAMA_RETURN_IF_ERROR(GetBool(j, file, "do_sample", &g.do_sample));
  LLAMA_RETURN_IF_ERROR(GetInt(j, file, "max_length", &g.max_length));
  return g;
}

}  // namespace llama
