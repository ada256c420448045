// make_checkpoint: writes a synthetic GPTQ Llama checkpoint (random weights, seeded) in the
// file layout of TheBloke/Llama-2-7b-Chat-GPTQ's branches.
//
//   make_checkpoint --out /tmp/tiny --preset tiny --layout all
//   make_checkpoint --out /tmp/7b --preset llama2-7b --layout main \
//       --tokenizer ../shared/fixtures/llama2-tokenizer/tokenizer.model --shards 2
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "engine/checkpoint_writer.h"

ABSL_FLAG(std::string, out, "", "output dir (with --layout all: one subdir per branch)");
ABSL_FLAG(std::string, preset, "tiny", "tiny | llama2-7b");
ABSL_FLAG(std::string, layout, "main",
          "main | gptq-4bit-32g-actorder_True | gptq-4bit-64g-actorder_True | "
          "gptq-4bit-128g-actorder_True | all");
ABSL_FLAG(uint64_t, seed, 0, "RNG seed (same seed, shape and layout -> same tensors)");
ABSL_FLAG(int, hidden, 0, "override hidden_size");
ABSL_FLAG(int, intermediate, 0, "override intermediate_size");
ABSL_FLAG(int, layers, 0, "override num_hidden_layers");
ABSL_FLAG(int, heads, 0, "override num_attention_heads");
ABSL_FLAG(int, kv_heads, 0, "override num_key_value_heads");
ABSL_FLAG(int, vocab, 0, "override vocab_size");
ABSL_FLAG(int, context, 0, "override max_position_embeddings");
ABSL_FLAG(std::string, tie, "", "override tie_word_embeddings: true | false");
ABSL_FLAG(std::string, tokenizer, "",
          "copy this tokenizer.model (its piece count must equal the vocab); "
          "empty: train a small BPE tokenizer on embedded text");
ABSL_FLAG(int, shards, 1, "number of safetensors shards (> 1 writes an index json)");
ABSL_FLAG(int, threads, 0, "generator threads (0: all cores)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Writes a synthetic GPTQ Llama checkpoint dir.");
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "make_checkpoint: --out is required\n");
    return 2;
  }
  auto shape = llama::ShapeByPreset(absl::GetFlag(FLAGS_preset));
  if (!shape.ok()) {
    std::fprintf(stderr, "make_checkpoint: %s\n", shape.status().ToString().c_str());
    return 2;
  }
  auto override_int = [](int flag, int* field) {
    if (flag > 0) *field = flag;
  };
  override_int(absl::GetFlag(FLAGS_hidden), &shape->hidden);
  override_int(absl::GetFlag(FLAGS_intermediate), &shape->intermediate);
  override_int(absl::GetFlag(FLAGS_layers), &shape->layers);
  override_int(absl::GetFlag(FLAGS_heads), &shape->heads);
  override_int(absl::GetFlag(FLAGS_kv_heads), &shape->kv_heads);
  override_int(absl::GetFlag(FLAGS_vocab), &shape->vocab);
  override_int(absl::GetFlag(FLAGS_context), &shape->context);
  if (absl::GetFlag(FLAGS_heads) > 0 && absl::GetFlag(FLAGS_kv_heads) == 0 &&
      shape->heads % shape->kv_heads != 0) {
    shape->kv_heads = shape->heads;
  }
  const std::string tie = absl::GetFlag(FLAGS_tie);
  if (tie == "true") shape->tie_embeddings = true;
  else if (tie == "false") shape->tie_embeddings = false;
  else if (!tie.empty()) {
    std::fprintf(stderr, "make_checkpoint: --tie must be true or false\n");
    return 2;
  }

  const std::string layout = absl::GetFlag(FLAGS_layout);
  std::vector<std::string> layouts = {layout};
  if (layout == "all") layouts = llama::AllLayoutNames();
  for (const std::string& name : layouts) {
    auto l = llama::LayoutByName(name);
    if (!l.ok()) {
      std::fprintf(stderr, "make_checkpoint: %s\n", l.status().ToString().c_str());
      return 2;
    }
    llama::CheckpointOptions opts;
    opts.shape = *shape;
    opts.layout = *l;
    opts.seed = absl::GetFlag(FLAGS_seed);
    opts.shards = absl::GetFlag(FLAGS_shards);
    opts.tokenizer_path = absl::GetFlag(FLAGS_tokenizer);
    opts.threads = absl::GetFlag(FLAGS_threads);
    const std::string dir = layout == "all" ? out + "/" + name : out;
    const auto t0 = std::chrono::steady_clock::now();
    if (auto s = llama::WriteCheckpoint(dir, opts); !s.ok()) {
      std::fprintf(stderr, "make_checkpoint: %s: %s\n", dir.c_str(), s.ToString().c_str());
      return 1;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s (%s, hidden %d, %d layers, vocab %d) in %.1f s\n", dir.c_str(),
                name.c_str(), shape->hidden, shape->layers, shape->vocab, secs);
  }
  return 0;
}
