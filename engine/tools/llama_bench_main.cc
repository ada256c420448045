// llama_bench: speed of a backend on any checkpoint dir, through the engine API.
//
//   llama_bench --model DIR [--backend cuda|cpu] [--device 0]
//
// Prints (median of --repeat runs after a warm-up):
//   prefill tok/s for a --prefill_tokens prompt (2048), time to first token for a
//   --ttft_tokens prompt (512), batch-1 greedy decode tok/s after a --prompt (128) prompt for
//   --new (256) tokens — both on-device greedy (DecodeGreedy) and through Decode with logits
//   copied to the host — and decode tok/s at --long_context (2048), right after its prefill
//   and again after --long_idle_ms of idle (a long prefill leaves the clocks power-capped for
//   the first decode steps); each decode figure with
//   its % of the memory-bandwidth roofline: bytes read per token / device-to-device copy
//   bandwidth measured in the same run (read + write counted). Also DecodeArgmax with
//   run-ahead, and one greedy request through the Scheduler (the service's decode path).
// --temperature T (> 0; with --top_k, --top_p, also under --decode_only): sampled decode
//   tok/s through DecodeSampled with run-ahead and through Decode + the host Sampler
//   (sampled_decode_bench.h).
// --ab "SET;SET": after the base figures, one runner per SET of --flag=value over the same
// weights, on-device decode figures per set (A/B runs without reloading the checkpoint).
// --timeline N: after the figures (and under each --ab set), N greedy steps at the short and
// the long context recorded by CUPTI (kernel_timeline.h): per kernel its duration, how early
// it started (PDL) and its share of the step's critical path, inside the replayed graphs.
// --profile_step: runs one decode step between cudaProfilerStart/Stop with graphs off, for
// `ncu --profile-from-start off` (the per-kernel breakdown).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"
#include "engine/tools/bench_util.h"
#include "engine/tools/sampled_decode_bench.h"
#include "engine/weights.h"
#ifdef LLAMA_HAVE_CUDA
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

#include "engine/cuda/cuda_runner.h"
#include "engine/tools/attention_clock_report.h"
#include "engine/tools/kernel_timeline.h"
#include "kernels/attention.h"
#include "kernels/gptq_matmul.h"
#include "kernels/launch.h"
#endif

ABSL_FLAG(std::string, model, "", "checkpoint dir");
ABSL_FLAG(std::string, backend, "cuda", "cuda | cpu");
ABSL_FLAG(int, device, 0, "CUDA device index");
ABSL_FLAG(int, prompt, 128, "prompt tokens before the short-context decode");
ABSL_FLAG(int, new_tokens, 256, "greedy tokens decoded at short context");
ABSL_FLAG(int, prefill_tokens, 2048, "prompt length for the prefill throughput figure");
ABSL_FLAG(int, ttft_tokens, 512, "prompt length for the time-to-first-token figure");
ABSL_FLAG(int, long_context, 2048, "context for the long-context decode figure (0: skip)");
ABSL_FLAG(int, long_new, 128, "tokens decoded at long context");
ABSL_FLAG(int, repeat, 3, "timed repetitions (median reported)");
ABSL_FLAG(bool, profile_step, false, "one decode step inside cudaProfilerStart/Stop, graphs off");
ABSL_FLAG(int, profile_prefill, 0, "one prefill of this many tokens inside cudaProfilerStart/Stop");
ABSL_FLAG(bool, graphs, true, "CUDA graphs for decode steps");
ABSL_FLAG(bool, ids_by_kernel, true,
          "DecodeArgmax / DecodeSampled: the advance kernel writes the ids to pinned host memory (CudaOptions)");
ABSL_FLAG(bool, decode_argmax, false, "with --decode_only: also the DecodeArgmax run-ahead figure (the service)");
ABSL_FLAG(bool, mma, true, "GPTQ decode GEMV on tensor cores (mma layout)");
ABSL_FLAG(bool, pdl, true, "programmatic dependent launch (kernels overlap their predecessor)");
ABSL_FLAG(std::string, prefill_fp16_weights, "auto",
          "prefill GEMM weights: auto (fp16 copies kept when half the device stays free), true (kept from load, "
          "+2 bytes per weight) or false (dequantized per prefill)");
ABSL_FLAG(bool, flash_prefill, true, "prefill attention: the fused flash kernel where it fits, else cuBLAS + softmax");
ABSL_FLAG(bool, stream_gemv, false, "streaming (persistent) GPTQ GEMV for decode, else split-K");
ABSL_FLAG(int, gemv_blocks_per_sm, 3, "streaming GEMV: blocks per SM");
ABSL_FLAG(int, gemv_l2_prefetch, 8, "streaming GEMV: L2 prefetch distance, 512-byte tiles per warp (0: off)");
ABSL_FLAG(bool, warp_gemv, true, "one decode row: x prepared once, then the warp-streaming GPTQ GEMV");
ABSL_FLAG(bool, gemv_rms_in_block, true, "warp GEMV: RMSNorm input computed per block, no input kernel");
ABSL_FLAG(bool, fold_down_perm, true, "act-order down_proj: its permutation folded into gate|up's columns at load");
ABSL_FLAG(bool, gemv_row_gather, true, "warp GEMV, act-order RMSNorm inputs gathered from the row in shared memory");
ABSL_FLAG(int, gemv_group_slots, 7, "warp GEMV: group sums in mma columns, a bit per group size (1 g32, 2 g64, 4 g128)");
ABSL_FLAG(bool, gemv_packed_zeros, true, "warp GEMV: 4-bit zero points (half the zero-point bytes)");
ABSL_FLAG(bool, gemv_uniform_zeros, true, "warp GEMV: no zero-point loads where a matrix's zeros are all equal");
ABSL_FLAG(bool, gemv_g32_wide, true, "warp GEMV: g32 K units of up to 64 groups (CudaOptions::gemv_g32_wide)");
ABSL_FLAG(bool, gemv_single_kernel, true,
          "all four GEMVs of a layer in one lean warp-GEMV kernel (CudaOptions::gemv_single_kernel)");
ABSL_FLAG(int, gemv_one_trip_input, 2, "warp GEMV inputs in one round trip: 0 never, 1 without act-order, 2 always");
ABSL_FLAG(int, gemv_warp_target_blocks, 0, "warp GEMV: fewest blocks its K units aim for (0: 13 x SMs / 5)");
ABSL_FLAG(int, qkv_gemv_target_blocks, 0, "the q|k|v warp GEMV alone: fewest blocks (0: as the others; CudaOptions)");
ABSL_FLAG(int, o_gemv_target_blocks, 256, "the o_proj warp GEMV alone: fewest blocks (0: as the others; CudaOptions)");
ABSL_FLAG(int, down_gemv_target_blocks, 0,
          "the down warp GEMV alone: fewest blocks (0: as the others; CudaOptions; other cuts lost, session 30)");
ABSL_FLAG(int, attn_split_keys, 0, "decode attention keys per split: 0 by context, or 32 / 64 / 128");
ABSL_FLAG(bool, fuse_rope_attention, true, "decode steps: RoPE + K/V write + attention in one kernel");
ABSL_FLAG(bool, prefill_half_outputs, true, "prefill q|k|v and gate|up GEMMs write fp16 (CudaOptions)");
ABSL_FLAG(bool, split_attention_cluster, true, "that kernel's splits merged in a thread-block cluster");
ABSL_FLAG(int, attn_long_splits, 12, "about this many splits of the split kernel past 1024 keys (0: 64-key splits)");
ABSL_FLAG(int, rope_split_attention, 2,
          "decode steps: the split kernel with RoPE inside (K/V in registers): 0 never, 1 past 1024 keys (the "
          "cluster kernel below), 2 always");
ABSL_FLAG(bool, persistent_decode, false,
          "one-row decode steps as one persistent kernel when the model fits (measured slower; experiment)");
ABSL_FLAG(int, persistent_blocks_per_sm, 2, "persistent decode kernel: blocks per SM (2 or 3)");
ABSL_FLAG(int, persistent_attn_parts, 32, "persistent decode kernel: most attention parts per head (1..32)");
ABSL_FLAG(bool, phase_clock, false,
          "persistent decode kernel: print the last step's phase times (us per layer) after each A/B decode run");
ABSL_FLAG(uint32_t, skip_ops, 0,
          "DIAGNOSIS ONLY, outputs garbage: leave ops out of decode steps (1 qkv, 2 attention, 4 o, 8 gate|up, "
          "16 down, 32 lm_head) to time their cost inside the graph");
ABSL_FLAG(int, decode_gap_ms, 0,
          "DIAGNOSIS: the GPU idles this many ms between each timed decode's prefill and its decode (the "
          "power state after a long prefill); the figures of record use 0");
ABSL_FLAG(int, long_idle_ms, 1000,
          "the long-context decode figure once more with the GPU idle this many ms after its prefill: a 2048-token "
          "prefill runs at the power cap and the clocks stay capped for the first ~45 decode steps after it "
          "(session 25); 0: no such row");
ABSL_FLAG(int, prefill_idle_ms, 1000,
          "the prefill figure once more with the GPU idle this many ms before each timed prefill (back to back, "
          "prefills run at the power cap); 0: no such row");
ABSL_FLAG(int, timeline, 0,
          "greedy steps per context recorded by CUPTI after the figures (and per --ab set): per-kernel "
          "critical-path table (0: off)");
ABSL_FLAG(int, embed_blocks, 16, "blocks of a decode step's embedding kernel (CudaOptions::embed_blocks)");
ABSL_FLAG(bool, attn_out_perm, true, "act-order o_proj: attention writes its input in o_proj's order (CudaOptions)");
ABSL_FLAG(bool, attn_clock, false,
          "DIAGNOSIS: the decode attention kernel's clock64 at 11 points of its path (kernels::SetAttentionClock), "
          "printed after each decode figure for the last launch: the split kernel's (the default), or the "
          "cluster kernel's with --rope_split_attention=1");
ABSL_FLAG(int, gemv_extra_smem, 0,
          "DIAGNOSIS: bytes of unused dynamic shared memory added to every warp-GEMV launch "
          "(kernels::SetGemvWarpSmemDiagnosis)");
ABSL_FLAG(int, gemv_carveout, -1, "DIAGNOSIS: the warp GEMV's shared-memory carve-out hint, percent (-1: the driver's)");
ABSL_FLAG(int, launch_carveout, -1,
          "shared-memory carve-out hint of every kernel launch, percent (kernels::SetLaunchCarveout; -1: none)");
ABSL_FLAG(bool, decode_only, false, "only the on-device greedy decode figures");
ABSL_FLAG(float, temperature, 0.f, "> 0: also sampled decode tok/s at this temperature (DecodeSampled, run-ahead)");
ABSL_FLAG(int, top_k, 0, "sampled decode figures: top-k (0 = off)");
ABSL_FLAG(float, top_p, 1.f, "sampled decode figures: top-p in (0, 1]");
ABSL_FLAG(bool, ab_prefill, false, "--ab sets report prefill tok/s and time to first token instead of decode");
ABSL_FLAG(uint32_t, skip_prefill_ops, 0,
          "DIAGNOSIS ONLY, outputs garbage: leave ops out of prefill forwards (bits as --skip_ops for the layer ops; "
          "2 also RoPE; 64 the GPTQ dequantization, 128 the act-order gather of x) to time their cost");
ABSL_FLAG(std::string, ab, "",
          "A/B sets, ';'-separated, each a list of --flag=value: one runner per set over the same loaded "
          "weights, on-device greedy decode figures only (e.g. \"--fuse_rope_attention=false;--skip_ops=2\")");
ABSL_FLAG(int, gemv_warp_kb, 32, "warp GEMV: largest K unit per warp in 64-row blocks (1..32)");
ABSL_FLAG(bool, gemv_ring_deep, false, "streaming GEMV: 8 loads in flight per lane instead of 4");

namespace llama {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
using bench::CopyBandwidth;
using bench::Median;

// Bytes one decode step must read at batch 1: every projection (4-bit weights, fp16 scales,
// uint8 zeros, the per-word group index and the act-order permutation, as the CUDA layout
// stores them), the fp16 lm_head, one embedding row, and the fp16 K/V of `context` positions.
double BytesPerToken(const ModelWeights& w, int context) {
  const ModelConfig& c = w.config;
  double b = 0;
  auto lin = [&](const Linear& l) {
    if (!l.quantized) return 2.0 * l.K * l.N;
    const double groups = l.gptq.num_groups();
    return l.K * static_cast<double>(l.N) / 2 + groups * l.N * 3 + l.K / 8 * 2.0 + (l.gptq.perm.empty() ? 0 : 4.0 * l.K);
  };
  for (const LayerWeights& L : w.layers)
    b += lin(L.wq) + lin(L.wk) + lin(L.wv) + lin(L.wo) + lin(L.w_gate) + lin(L.w_up) + lin(L.w_down) + 8.0 * c.hidden_size;
  b += 2.0 * c.vocab_size * c.hidden_size + 2.0 * c.hidden_size;
  const int hd = c.head_dim > 0 ? c.head_dim : c.hidden_size / c.num_attention_heads;
  b += 2.0 * 2.0 * c.num_hidden_layers * static_cast<double>(context) * c.num_key_value_heads * hd;
  return b;
}


std::vector<int32_t> RandomTokens(int n, int vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(3, vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  t[0] = 1;
  return t;
}

// A runner of `backend` with the CUDA options the flags say.
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeRunner(Backend backend, std::shared_ptr<const ModelWeights> weights,
                                                        const RunnerOptions& opt) {
#ifdef LLAMA_HAVE_CUDA
  if (backend == Backend::kCuda) {
    // Process-wide; the runner's graphs capture the kernel chosen when they are first run.
    kernels::SetAttentionClock(absl::GetFlag(FLAGS_attn_clock));
    kernels::SetLaunchCarveout(absl::GetFlag(FLAGS_launch_carveout));
    kernels::SetGemvWarpSmemDiagnosis(absl::GetFlag(FLAGS_gemv_extra_smem), absl::GetFlag(FLAGS_gemv_carveout));
    CudaOptions co;
    co.use_graphs = absl::GetFlag(FLAGS_graphs) && !absl::GetFlag(FLAGS_profile_step);
    co.ids_by_kernel = absl::GetFlag(FLAGS_ids_by_kernel);
    co.programmatic_launch = absl::GetFlag(FLAGS_pdl);
    co.tensor_core_gemv = absl::GetFlag(FLAGS_mma);
    auto pw = ParsePrefillWeights(absl::GetFlag(FLAGS_prefill_fp16_weights));
    if (!pw.ok()) return pw.status();
    co.prefill_weights = *pw;
    co.flash_prefill = absl::GetFlag(FLAGS_flash_prefill);
    co.stream_gemv = absl::GetFlag(FLAGS_stream_gemv);
    co.gemv_blocks_per_sm = absl::GetFlag(FLAGS_gemv_blocks_per_sm);
    co.gemv_l2_prefetch = absl::GetFlag(FLAGS_gemv_l2_prefetch);
    co.gemv_ring_deep = absl::GetFlag(FLAGS_gemv_ring_deep);
    co.warp_gemv = absl::GetFlag(FLAGS_warp_gemv);
    co.gemv_warp_kb = absl::GetFlag(FLAGS_gemv_warp_kb);
    co.gemv_rms_in_block = absl::GetFlag(FLAGS_gemv_rms_in_block);
    co.gemv_warp_target_blocks = absl::GetFlag(FLAGS_gemv_warp_target_blocks);
    co.qkv_gemv_target_blocks = absl::GetFlag(FLAGS_qkv_gemv_target_blocks);
    co.o_gemv_target_blocks = absl::GetFlag(FLAGS_o_gemv_target_blocks);
    co.down_gemv_target_blocks = absl::GetFlag(FLAGS_down_gemv_target_blocks);
    co.gemv_one_trip_input = absl::GetFlag(FLAGS_gemv_one_trip_input);
    co.fold_down_permutation = absl::GetFlag(FLAGS_fold_down_perm);
    co.gemv_row_gather = absl::GetFlag(FLAGS_gemv_row_gather);
    co.gemv_group_slots = absl::GetFlag(FLAGS_gemv_group_slots);
    co.gemv_packed_zeros = absl::GetFlag(FLAGS_gemv_packed_zeros);
    co.gemv_uniform_zeros = absl::GetFlag(FLAGS_gemv_uniform_zeros);
    co.gemv_g32_wide = absl::GetFlag(FLAGS_gemv_g32_wide);
    co.gemv_single_kernel = absl::GetFlag(FLAGS_gemv_single_kernel);
    co.embed_blocks = absl::GetFlag(FLAGS_embed_blocks);
    co.attn_out_perm = absl::GetFlag(FLAGS_attn_out_perm);
    co.attn_split_keys = absl::GetFlag(FLAGS_attn_split_keys);
    co.fuse_rope_attention = absl::GetFlag(FLAGS_fuse_rope_attention);
    co.rope_split_attention = absl::GetFlag(FLAGS_rope_split_attention);
    co.attn_long_splits = absl::GetFlag(FLAGS_attn_long_splits);
    co.split_attention_cluster = absl::GetFlag(FLAGS_split_attention_cluster);
    co.prefill_half_outputs = absl::GetFlag(FLAGS_prefill_half_outputs);
    co.diagnostic_skip_ops = absl::GetFlag(FLAGS_skip_ops);
    co.diagnostic_skip_prefill_ops = absl::GetFlag(FLAGS_skip_prefill_ops);
    co.persistent_decode = absl::GetFlag(FLAGS_persistent_decode);
    co.persistent_blocks_per_sm = absl::GetFlag(FLAGS_persistent_blocks_per_sm);
    co.persistent_attn_parts = absl::GetFlag(FLAGS_persistent_attn_parts);
    co.diagnostic_phase_clock = absl::GetFlag(FLAGS_phase_clock);
    return CreateCudaRunnerWithOptions(std::move(weights), opt, co);
  }
#endif
  return CreateRunner(backend, std::move(weights), opt);
}

// Sets flags from "--name=value --name2" (a bare name is "true"); returns their previous
// values, for RestoreFlags.
absl::StatusOr<std::vector<std::pair<absl::CommandLineFlag*, std::string>>> ApplyFlags(const std::string& set) {
  std::vector<std::pair<absl::CommandLineFlag*, std::string>> saved;
  for (absl::string_view tok : absl::StrSplit(set, ' ', absl::SkipEmpty())) {
    absl::ConsumePrefix(&tok, "--");
    const std::vector<std::string> kv = absl::StrSplit(tok, absl::MaxSplits('=', 1));
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(kv[0]);
    if (!f) return absl::InvalidArgumentError(absl::StrCat("--ab: no flag --", kv[0]));
    saved.emplace_back(f, f->CurrentValue());
    std::string err;
    if (!f->ParseFrom(kv.size() > 1 ? kv[1] : "true", &err))
      return absl::InvalidArgumentError(absl::StrCat("--ab: --", kv[0], ": ", err));
  }
  return saved;
}
void RestoreFlags(const std::vector<std::pair<absl::CommandLineFlag*, std::string>>& saved) {
  std::string err;
  for (auto it = saved.rbegin(); it != saved.rend(); ++it) it->first->ParseFrom(it->second, &err);
}

// The device idles (every call before it has returned its results) for ms, by default
// --decode_gap_ms: the clocks leave the power cap that back-to-back prefills run into.
void IdleFor(int ms = -1) {
  if (ms < 0) ms = absl::GetFlag(FLAGS_decode_gap_ms);
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) {
    std::fprintf(stderr, "llama_bench: --model is required\n");
    return 2;
  }
  auto backend = ParseBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::fprintf(stderr, "llama_bench: %s\n", backend.status().ToString().c_str());
    return 2;
  }
  const auto t_load = Clock::now();
  auto weights = LoadModelWeights(dir);
  if (!weights.ok()) {
    std::fprintf(stderr, "llama_bench: %s\n", weights.status().ToString().c_str());
    return 1;
  }
  const ModelConfig& cfg = (*weights)->config;
  const int repeat = std::max(1, absl::GetFlag(FLAGS_repeat));
  const int long_ctx = absl::GetFlag(FLAGS_long_context);
  const int prompt_n = absl::GetFlag(FLAGS_prompt), new_n = absl::GetFlag(FLAGS_new_tokens);
  const int prefill_n = absl::GetFlag(FLAGS_prefill_tokens), ttft_n = absl::GetFlag(FLAGS_ttft_tokens);
  RunnerOptions opt;
  opt.max_slots = 1;
  opt.device = absl::GetFlag(FLAGS_device);
  opt.max_context = std::max({prompt_n + new_n, prefill_n, ttft_n, long_ctx + absl::GetFlag(FLAGS_long_new)});
  const double short_bytes = BytesPerToken(**weights, prompt_n + new_n / 2);
  const double long_bytes = BytesPerToken(**weights, long_ctx + absl::GetFlag(FLAGS_long_new) / 2);
  absl::StatusOr<std::unique_ptr<ModelRunner>> runner = MakeRunner(*backend, *weights, opt);
  if (!runner.ok()) {
    std::fprintf(stderr, "llama_bench: %s\n", runner.status().ToString().c_str());
    return 1;
  }
  const int timeline_steps = absl::GetFlag(FLAGS_timeline);
  // --ab and --timeline build more runners from them.
  if (absl::GetFlag(FLAGS_ab).empty() && timeline_steps <= 0) weights->reset();
  ModelRunner& r = **runner;
  const int vocab = cfg.vocab_size;
  std::printf("model      %s\ndevice     %s\nloaded in  %.1f s, %.3f GB on the device\n", dir.c_str(),
              r.device_name().c_str(), Seconds(t_load, Clock::now()), r.memory_bytes() / 1e9);
#ifdef LLAMA_HAVE_CUDA
  if (*backend == Backend::kCuda)
    std::printf("decode     %s\nprefill    %s\n",
                CudaPersistentDecodeActive(r) ? "one persistent kernel per step" : "layer by layer",
                CudaPrefillWeightsResident(r) ? "fp16 weight copies resident" : "weights dequantized per prefill");
#endif
  std::mt19937 rng(1234);
  std::vector<float> logits(vocab);
  // --attn_clock: the clocked attention kernel's report (engine/tools/attention_clock_report.h).
  auto attn_clock = []() {
#ifdef LLAMA_HAVE_CUDA
    if (absl::GetFlag(FLAGS_attn_clock)) return bench::AttentionClockReport();
#endif
    return std::string();
  };
  auto check = [](const absl::Status& st) {
    if (!st.ok()) {
      std::fprintf(stderr, "llama_bench: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  };

#ifdef LLAMA_HAVE_CUDA
  if (const int n = absl::GetFlag(FLAGS_profile_prefill); n > 0) {
    const auto p = RandomTokens(n, vocab, rng);
    check(r.Prefill(0, 0, p, absl::MakeSpan(logits)));  // warm
    cudaProfilerStart();
    check(r.Prefill(0, 0, p, absl::MakeSpan(logits)));
    cudaProfilerStop();
    std::printf("profiled one %d-token prefill\n", n);
    return 0;
  }
  if (absl::GetFlag(FLAGS_profile_step)) {
    const auto p = RandomTokens(prompt_n, vocab, rng);
    check(r.Prefill(0, 0, p, absl::MakeSpan(logits)));
    int slot = 0, pos = prompt_n;
    int32_t tok = 3;
    check(r.Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1), absl::MakeConstSpan(&tok, 1),
                   absl::MakeSpan(logits)));  // warm
    cudaProfilerStart();
    pos++;
    check(r.Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1), absl::MakeConstSpan(&tok, 1),
                   absl::MakeSpan(logits)));
    cudaProfilerStop();
    std::printf("profiled one decode step at position %d\n", pos);
    return 0;
  }
#endif
  const double bw = *backend == Backend::kCuda ? CopyBandwidth(opt.device) : 0;
  if (bw > 0) std::printf("copy bw    %.0f GB/s (device-to-device, read + write)\n", bw / 1e9);
  std::printf("bytes/tok  %.3f GB at context %d, %.3f GB at context %d\n", short_bytes / 1e9, prompt_n + new_n / 2,
              long_bytes / 1e9, long_ctx + absl::GetFlag(FLAGS_long_new) / 2);
  auto roof = [&](double tok_s, double bytes) { return bw > 0 ? 100.0 * tok_s * bytes / bw : 0.0; };

  // Prefill throughput and TTFT.
  auto time_prefill_on = [&](ModelRunner& rr, int n, int idle_ms = 0) {
    const auto p = RandomTokens(n, vocab, rng);
    check(rr.Prefill(0, 0, p, absl::MakeSpan(logits)));  // warm-up
    std::vector<double> t;
    for (int i = 0; i < repeat; ++i) {
      IdleFor(idle_ms);
      const auto a = Clock::now();
      check(rr.Prefill(0, 0, p, absl::MakeSpan(logits)));
      t.push_back(Seconds(a, Clock::now()));
    }
    return Median(t);
  };
  auto time_prefill = [&](int n) { return time_prefill_on(r, n); };
  const bool decode_only = absl::GetFlag(FLAGS_decode_only) || !absl::GetFlag(FLAGS_ab).empty();
  const double t_prefill = decode_only ? 0 : time_prefill(prefill_n);
  const int prefill_idle = absl::GetFlag(FLAGS_prefill_idle_ms);
  const double t_prefill_idle = decode_only || prefill_idle <= 0 ? 0 : time_prefill_on(r, prefill_n, prefill_idle);
  const double t_ttft = decode_only ? 0 : time_prefill(ttft_n);

  // Decode: prompt, then greedy tokens on the device / through Decode + host argmax.
  // How the decode figures drive the runner: DecodeGreedy (the loop on the device), Decode
  // with the logits copied back and a host argmax, or DecodeArgmax with run-ahead (what the
  // scheduler does for greedy batches).
  enum DecodeMode { kOnDevice, kLogits, kArgmaxRunAhead };
  auto time_decode = [&](ModelRunner& rr, int ctx, int n, DecodeMode mode, int idle_ms = -1) {
    std::mt19937 prompt_rng(1234 + ctx);
    const auto p = RandomTokens(ctx, vocab, prompt_rng);
    std::vector<double> t;
    std::vector<int32_t> out(n);
    for (int i = 0; i <= repeat; ++i) {  // i == 0 warms the graphs
      check(rr.Prefill(0, 0, p, absl::MakeSpan(logits)));
      const int32_t first = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      IdleFor(idle_ms);
      const auto a = Clock::now();
      if (mode == kOnDevice) {
        check(rr.DecodeGreedy(0, ctx, first, absl::MakeSpan(out)));
      } else if (mode == kArgmaxRunAhead) {
        int32_t tok = first;
        for (int s = 0; s < n; ++s) {
          int slot = 0, pos = ctx + s;
          check(rr.DecodeArgmax(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1),
                                absl::MakeConstSpan(&tok, 1), absl::MakeSpan(&tok, 1), /*run_ahead=*/true));
        }
      } else {
        int32_t tok = first;
        for (int s = 0; s < n; ++s) {
          int slot = 0, pos = ctx + s;
          check(rr.Decode(absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&pos, 1), absl::MakeConstSpan(&tok, 1),
                          absl::MakeSpan(logits)));
          tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
      }
      if (i > 0) t.push_back(Seconds(a, Clock::now()));
    }
    return n / Median(t);
  };
  // --timeline: a fresh runner per context, so that its graphs are instantiated while CUPTI
  // records; a warm-up decode, then timeline_steps recorded steps.
  auto timeline = [&]() {
#ifdef LLAMA_HAVE_CUDA
    if (timeline_steps <= 0 || *backend != Backend::kCuda) return;
    for (const int ctx : {prompt_n, long_ctx}) {
      if (ctx <= 0) continue;
      bench::KernelTimeline tl;
      if (!tl.status().ok()) {
        std::printf("  timeline: %s\n", tl.status().ToString().c_str());
        return;
      }
      auto rr = MakeRunner(*backend, *weights, opt);
      check(rr.status());
      std::mt19937 prompt_rng(1234 + ctx);
      const auto p = RandomTokens(ctx, vocab, prompt_rng);
      std::vector<int32_t> out(timeline_steps);
      check((*rr)->Prefill(0, 0, p, absl::MakeSpan(logits)));
      check((*rr)->DecodeGreedy(0, ctx, 3, absl::MakeSpan(out)));  // captures the graphs
      check((*rr)->Prefill(0, 0, p, absl::MakeSpan(logits)));
      IdleFor();
      tl.Clear();
      const auto a = Clock::now();
      check((*rr)->DecodeGreedy(0, ctx, 3, absl::MakeSpan(out)));
      const double s = Seconds(a, Clock::now());
      const auto spans = tl.Stop();
      std::printf("  context %d: %.1f tok/s while recording\n%s", ctx, timeline_steps / s,
                  bench::DescribeSteps(spans, "GreedyAdvance").c_str());
    }
    std::fflush(stdout);
#endif
  };
  if (const std::string ab = absl::GetFlag(FLAGS_ab); !ab.empty()) {
    // One runner per set over the same host weights; decode figures, or with --ab_prefill
    // prefill tok/s and time to first token.
    const bool ab_prefill = absl::GetFlag(FLAGS_ab_prefill);
    if (ab_prefill) {
      std::printf("\n%-72s %12s %9s\n", "A/B set", "prefill t/s", "TTFT ms");
    } else {
      std::printf("\n%-72s %9s %7s %9s %7s\n", "A/B set", "tok/s", "roof", "long", "roof");
    }
    // The phase clock (--phase_clock) of the last step of each decode run, printed under its row.
    auto phases = [&](ModelRunner& rr, const char* when) {
      std::string text;
#ifdef LLAMA_HAVE_CUDA
      const std::vector<double> us = CudaPersistentDecodePhaseMicros(rr);
      if (us.size() == 6)
        text = absl::StrFormat("  phases, us per layer (%s): q|k|v %.2f  attention %.2f  o %.2f  gate|up %.2f  "
                               "down %.2f  step %.1f\n", when, us[0], us[1], us[2], us[3], us[4], us[5]);
#endif
      return text;
    };
    auto line = [&](const std::string& what, ModelRunner& rr) {
      if (ab_prefill) {
        const double tp = time_prefill_on(rr, prefill_n), tt = time_prefill_on(rr, ttft_n);
        std::printf("%-72s %12.0f %9.2f\n", what.c_str(), prefill_n / tp, tt * 1e3);
        std::fflush(stdout);
        return;
      }
      const double d = time_decode(rr, prompt_n, new_n, kOnDevice);
      const std::string short_phases = phases(rr, "short") + attn_clock();
      const double l = long_ctx > 0 ? time_decode(rr, long_ctx, absl::GetFlag(FLAGS_long_new), kOnDevice) : 0;
      const std::string long_phases = long_ctx > 0 ? phases(rr, "long") : "";
      std::printf("%-72s %9.1f %6.1f%% %9.1f %6.1f%%\n%s%s", what.c_str(), d, roof(d, short_bytes), l,
                  roof(l, long_bytes), short_phases.c_str(), long_phases.c_str());
      std::fflush(stdout);
      timeline();
    };
    line("(base)", r);
    for (const std::string& set : std::vector<std::string>(absl::StrSplit(ab, ';', absl::SkipEmpty()))) {
      auto saved = ApplyFlags(set);
      if (!saved.ok()) {
        std::fprintf(stderr, "llama_bench: %s\n", saved.status().ToString().c_str());
        return 2;
      }
      auto ab_runner = MakeRunner(*backend, *weights, opt);
      if (ab_runner.ok()) {
        line(set, **ab_runner);
      } else {
        std::printf("%-72s %s\n", set.c_str(), ab_runner.status().ToString().c_str());
      }
      RestoreFlags(*saved);
    }
    return 0;
  }
  const double dec_dev = time_decode(r, prompt_n, new_n, kOnDevice);
  const double dec_api = decode_only ? 0 : time_decode(r, prompt_n, new_n, kLogits);
  const bool argmax_row = !decode_only || absl::GetFlag(FLAGS_decode_argmax);
  const double dec_ahead = argmax_row ? time_decode(r, prompt_n, new_n, kArgmaxRunAhead) : 0;
  const double dec_long = long_ctx > 0 ? time_decode(r, long_ctx, absl::GetFlag(FLAGS_long_new), kOnDevice) : 0;
  const int long_idle = absl::GetFlag(FLAGS_long_idle_ms);
  const double dec_long_idle =
      long_ctx > 0 && long_idle > 0 ? time_decode(r, long_ctx, absl::GetFlag(FLAGS_long_new), kOnDevice, long_idle) : 0;

  std::printf("\n%-52s %12s %10s\n", "metric", "value", "% roofline");
  if (!decode_only) {
    std::printf("%-52s %12.0f %10s\n", absl::StrFormat("prefill tok/s (%d-token prompt)", prefill_n).c_str(),
                prefill_n / t_prefill, "-");
    if (t_prefill_idle > 0)
      std::printf("%-52s %12.0f %10s\n", absl::StrFormat("  the same, %d ms idle before each", prefill_idle).c_str(),
                  prefill_n / t_prefill_idle, "-");
    std::printf("%-52s %12.2f %10s\n", absl::StrFormat("time to first token, ms (%d-token prompt)", ttft_n).c_str(),
                t_ttft * 1e3, "-");
  }
  auto row = [&](const std::string& what, double tok_s, double bytes) {
    const std::string pct = bw > 0 ? absl::StrFormat("%.1f%%", roof(tok_s, bytes)) : "-";
    std::printf("%-52s %12.1f %10s\n", what.c_str(), tok_s, pct.c_str());
  };
  row(absl::StrFormat("decode tok/s, batch 1, on-device greedy (%d+%d)", prompt_n, new_n), dec_dev, short_bytes);
  if (!decode_only)
    row(absl::StrFormat("decode tok/s, batch 1, Decode()+host argmax (%d+%d)", prompt_n, new_n), dec_api, short_bytes);
  if (argmax_row)
    row(absl::StrFormat("decode tok/s, batch 1, DecodeArgmax run-ahead (%d+%d)", prompt_n, new_n), dec_ahead,
        short_bytes);
  if (long_ctx > 0)
    row(absl::StrFormat("decode tok/s at %d context (+%d)", long_ctx, absl::GetFlag(FLAGS_long_new)), dec_long,
        long_bytes);
  if (dec_long_idle > 0)
    row(absl::StrFormat("  the same, %d ms idle after the prefill", long_idle), dec_long_idle, long_bytes);
  if (absl::GetFlag(FLAGS_temperature) > 0) {
    std::mt19937 prompt_rng(1234 + prompt_n);
    auto rows = bench::SampledDecodeRows(r, RandomTokens(prompt_n, vocab, prompt_rng), new_n, repeat,
                                         absl::GetFlag(FLAGS_temperature), absl::GetFlag(FLAGS_top_k),
                                         absl::GetFlag(FLAGS_top_p));
    check(rows.status());
    for (const auto& [what, tok_s] : *rows) row(what, tok_s, short_bytes);
  }
  timeline();
  if (!decode_only) {
    // The service's path: one greedy request through the scheduler, streamed; tok/s from its
    // first chunk to its last. Needs the checkpoint's tokenizer; the runner moves into it.
    auto tok = Tokenizer::Load(dir);
    if (!tok.ok()) {
      std::printf("(no scheduler figure: %s)\n", tok.status().ToString().c_str());
      return 0;
    }
    SchedulerOptions so;
    so.eos_ids = {-1};  // random weights: never stop before new_n tokens
    Scheduler sched(std::move(*runner), std::shared_ptr<const Tokenizer>(std::move(*tok)), so);
    std::vector<double> t;
    for (int i = 0; i <= repeat; ++i) {
      std::mt19937 prompt_rng(1234 + prompt_n);
      const auto p = RandomTokens(prompt_n, vocab, prompt_rng);
      GenerationRequest req;
      req.prompt.assign(p.begin(), p.end());
      req.params.max_new_tokens = new_n;
      auto h = sched.Submit(std::move(req));
      check(h.status());
      StreamChunk c;
      int got = 0;
      Clock::time_point first = Clock::now();
      while ((*h)->Next(&c)) {
        if (got == 0 && !c.tokens.empty()) first = Clock::now();
        got += static_cast<int>(c.tokens.size());
      }
      check((*h)->status());
      if (i > 0) t.push_back(Seconds(first, Clock::now()) / std::max(1, got - 1));
    }
    row(absl::StrFormat("decode tok/s, batch 1, Scheduler greedy request (%d+%d)", prompt_n, new_n),
        1.0 / Median(t), short_bytes);
  }
  return 0;
}

}  // namespace
}  // namespace llama

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Benchmarks a backend on a checkpoint dir (see the header of llama_bench_main.cc).");
  absl::ParseCommandLine(argc, argv);
  return llama::Main();
}
