// sentencepiece helpers for the synthetic checkpoint writer. Kept free of absl types:
// sentencepiece's headers declare their own absl::string_view, which clashes with
// Abseil's (ABSL_OPTION_USE_STD_STRING_VIEW is 0 in the Debian build).
#pragma once

#include <string>

namespace llama::spm {

// Trains a BPE model (byte fallback, unk=0, bos=1, eos=2, identity normalization like
// Llama's) with exactly `vocab` pieces on the embedded demo text. Returns false and sets
// `error` on failure; `model` receives the serialized ModelProto.
bool TrainDemoBpe(int vocab, std::string* model, std::string* error);

// Piece count of a tokenizer.model file, or -1 with `error` set.
int PieceCount(const std::string& path, std::string* error);

}  // namespace llama::spm
