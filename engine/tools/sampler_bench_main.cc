// sampler_bench: host time of Sampler::Sample per token (what a sampled request pays every
// decode step on top of the forward pass), over a vocab of random normal logits.
//
//   sampler_bench [--vocab 32000] [--draws 2000]
//
// Prints microseconds per sample for greedy, temperature, top-p, top-k and all three with a
// repetition penalty, and a checksum of the drawn ids (equal checksums: equal token streams).
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "engine/sampler.h"

ABSL_FLAG(int, vocab, 32000, "logits per sample");
ABSL_FLAG(int, draws, 2000, "samples per mode");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Times Sampler::Sample per token (see the header of sampler_bench_main.cc).");
  absl::ParseCommandLine(argc, argv);
  const int vocab = absl::GetFlag(FLAGS_vocab), draws = absl::GetFlag(FLAGS_draws);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> base(vocab);
  for (float& x : base) x = normal(rng);
  std::vector<int> history(300);
  for (int& h : history) h = static_cast<int>(rng() % vocab);
  struct Mode {
    const char* name;
    float temperature, top_p;
    int top_k;
    float penalty;
  };
  const Mode modes[] = {{"greedy", 0.f, 1.f, 0, 1.f},
                        {"temperature 0.7", 0.7f, 1.f, 0, 1.f},
                        {"top_p 0.9", 0.7f, 0.9f, 0, 1.f},
                        {"top_k 40", 0.7f, 1.f, 40, 1.f},
                        {"top_p + top_k + penalty", 0.7f, 0.9f, 40, 1.1f}};
  std::printf("%-26s %12s %12s\n", "mode", "us/sample", "checksum");
  for (const Mode& m : modes) {
    llama::SamplingParams p;
    p.temperature = m.temperature;
    p.top_p = m.top_p;
    p.top_k = m.top_k;
    p.repetition_penalty = m.penalty;
    p.seed = 3;
    llama::Sampler sampler(p);
    std::vector<float> logits;
    long long checksum = 0;
    const auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < draws; ++i) {
      logits = base;  // Sample modifies them (penalty)
      checksum += sampler.Sample(absl::MakeSpan(logits), history);
    }
    const auto b = std::chrono::steady_clock::now();
    std::printf("%-26s %12.1f %12lld\n", m.name, std::chrono::duration<double, std::micro>(b - a).count() / draws,
                checksum);
  }
  return 0;
}
