// The CUDA backend (ModelRunner on one GPU). CreateCudaRunner (engine/runner.h) is
// CreateCudaRunnerWithOptions with default CudaOptions.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runner.h"

namespace llama {

struct CudaOptions {
  size_t memory_budget_bytes = 0;  // 0: whatever the device has; else fail the load past it
  int prefill_chunk = 2048;        // rows per prefill forward (activation scratch scales with it)
  bool use_graphs = true;          // decode steps (<= 8 rows) replayed as CUDA graphs
  // DecodeArgmax / DecodeSampled: the step's advance kernel writes the chosen ids into pinned
  // host memory itself (a graph per run-ahead parity), instead of a device-to-host copy in
  // the stream after each step's graph, which the next step's graph waited for.
  bool ids_by_kernel = true;
  bool programmatic_launch = true; // PDL: kernels overlap their predecessor's tail (process-wide)
  bool tensor_core_gemv = true;    // GPTQ weights in the mma layout (decode GEMV on tensor cores)
  // Prefill GEMMs read an fp16 copy of every GPTQ weight dequantized once at load instead of
  // dequantizing each projection per prefill (4.4 ms of a 7B prefill on an H200): 2 bytes per
  // weight more device memory (+12.7 GB for Llama-2-7B, 3x its 4-bit size). kAuto (default):
  // when at least half of the device stays free with the copies (engine/runner.h).
  PrefillWeights prefill_weights = PrefillWeights::kAuto;
  // Prefill attention: the fused flash-attention kernel (kernels/flash_prefill.h) where the
  // shape fits (head_dim 128), else cuBLAS S = QK^T, a softmax kernel and O = PV.
  bool flash_prefill = true;
  // Decode GEMV (process-wide, see kernels::GemvTuning): the streaming kernel for <= 4 rows
  // (off by default: measured slower than split-K, tests/bench/RESULTS.md), its grid (blocks
  // per SM), L2 prefetch distance (512-byte tiles per warp), 8-deep ring.
  bool stream_gemv = false;
  int gemv_blocks_per_sm = 3;
  int gemv_l2_prefetch = 8;
  bool gemv_ring_deep = false;
  // One decode row: the warp-streaming GEMV (kernels/gptq_gemv_warp.cu; measured faster than
  // split-K, tests/bench/RESULTS.md) with K units of at most gemv_warp_kb 64-row blocks, its
  // input computed once per block (RMSNorm too, unless gemv_rms_in_block is off).
  bool warp_gemv = true;
  int gemv_warp_kb = 32;
  bool gemv_rms_in_block = true;   // RMSNorm input computed per GEMV block instead of an input kernel
  int gemv_warp_target_blocks = 0; // warp GEMV: fewest blocks its K units aim for (0: 13 x SMs / 5)
  // The q|k|v GEMV alone (0: as the others). Measured, lost (tests/bench/RESULTS.md, session
  // 15): fewer q|k|v blocks let attention start earlier but not end earlier; H200 `main`
  // 717 -> 645 (2 x SMs) / 687 tok/s.
  int qkv_gemv_target_blocks = 0;
  // The o_proj GEMV alone (0: as the others). 256: K units of 8 64-row blocks on its 4096
  // rows (256 blocks on 132 SMs) instead of the others' 6 (352 blocks). Measured on an H200
  // (tests/bench/RESULTS.md, session 29): 256 +0.25% decode on `main`, +0.2% on 128g, +1.0%
  // on 32g; 128 -1.8% (32g), 512 (units of 4, every weight loaded before the PDL wait) -5%,
  // 1024 -10%.
  int o_gemv_target_blocks = 256;
  // The down GEMV alone (0: as the others: units of 16 of its 172 64-row blocks, 352 blocks on
  // 132 SMs). Measured, lost (tests/bench/RESULTS.md, session 30): unlike o_proj, down wants
  // the default's blocks: 256 (units of 22) -4.5 to -5.4%, 288 -3.1 to -3.5%, 320 -2.3 to
  // -2.6%, 384 (units of 15; 416 with 128-row groups) -5% on `main`, -0.3 to -0.8% on 32g,
  // the same on 64g.
  int down_gemv_target_blocks = 0;
  // Warp GEMV inputs in one round trip (kernels::GemvTuning::warp_one_trip): 0 never, 1 for
  // matrices without act-order, 2 for every matrix. With gemv_row_gather, 2 leaves only
  // act-order o_proj to it (+0.5% decode on an H200; alone, with act-order RMSNorm inputs,
  // it lost: tests/bench/RESULTS.md, sessions 8 and 9).
  int gemv_one_trip_input = 2;
  // RMSNorm inputs of act-order matrices staged through shared memory (the whole row, then a
  // gather from there; kernels::GemvTuning::warp_row_gather): decode +8 to +9% on an H200.
  bool gemv_row_gather = true;
  // Warp-GEMV group slots (kernels::GemvTuning::warp_group_slots): a bit per group size (1 g32,
  // 2 g64, 4 g128). Decode on an H200: 32g +9.5%, `main` +2.0%, 64g +1.8%, 128g +1.2%.
  int gemv_group_slots = 7;
  // The warp GEMV reads 4-bit zero points (kernels::GemvTuning::warp_packed_zeros; the model
  // keeps a 4-bit copy of them: g32 +2.5% device memory). H100 decode: 32g +1.1%, 64g +1.0%,
  // 128g +0.6%, `main` +0.3%. The opt-in persistent kernel reads the copy whenever the model
  // has one (the upload makes it for every matrix the warp GEMV can take, except, with
  // gemv_uniform_zeros on, those whose zero points are all equal: nothing reads them there).
  bool gemv_packed_zeros = true;
  // The warp GEMV loads no zero points for a matrix whose zero points are all equal
  // (kernels::GemvTuning::warp_uniform_zeros, GptqMatrix::uniform_zero; AutoGPTQ sym=True
  // checkpoints, as TheBloke's four branches and the synthetic ones): g32 reads 101 MB less
  // per decode step. Same arithmetic (tests/bench/RESULTS.md, session 12).
  bool gemv_uniform_zeros = true;
  // g32 (with group slots): warp GEMV K units of up to 64 groups, as g64 / g128 take, instead
  // of 32 (GemvTuning::warp_g32_wide): gate|up runs as 344 blocks instead of 688 (1.7 waves at
  // 3 blocks per SM). 32g decode on an H200 593.4 -> 608.5 tok/s, gate|up 19.20 -> 16.90 us a
  // layer (tests/bench/RESULTS.md, session 18). Other group sizes: unchanged.
  bool gemv_g32_wide = true;
  // Act-order layers (GptqMatrix::act_order_layer): all four GEMVs in one warp-GEMV kernel
  // (GemvTuning::warp_single_kernel) of 37-45 KB of sm_90 code, with only the stagings a
  // decode layer takes, instead of alternating two kernels of 62-80 KB (the attention kernel
  // between them is 47 KB). H200, session 20, same-process A/B against two kernels: 32g
  // +1.7%, 64g +0.8%, 128g +0.6% decode. `main` keeps its one 72 KB kernel: the lean one ran
  // ~1% slower there (tests/bench/RESULTS.md).
  bool gemv_single_kernel = true;
  // Blocks that copy a decode row's embedding and clear the first q|k|v accumulator (one
  // block took ~9 us of a step in the replayed graph: tests/bench/RESULTS.md, session 21).
  int embed_blocks = 16;
  // Act-order o_proj (DeviceLayer::attn_out_perm): the decode attention kernels (the cluster
  // merges) write each (head, dim) where o_proj's act-order wants it, so that o_proj stages its
  // input in order instead of gathering it from global memory. Same bits.
  bool attn_out_perm = true;
  // Act-order down_proj: its permutation folded into gate|up's output columns at upload
  // (engine/act_order_fold.h), so that down's GEMV reads its input in order instead of
  // gathering it. Same function (CPU logits bit-identical); decode +4.5% (32g) to +6.1% (128g)
  // on an H200 (tests/bench/RESULTS.md, session 9).
  bool fold_down_permutation = true;
  // Prefill forwards (> 8 rows): the q|k|v and gate|up GEMMs write fp16 instead of fp32 (the
  // RoPE and SwiGLU kernels read it): half the bytes those GEMMs write and their consumers
  // read (~280 MB per layer at 2048 rows). The values are rounded to fp16 once more, as an fp16
  // Hugging Face model's projections are. H200 `main` prefill 2048: 41.5 / 41.1k -> 43.1 /
  // 42.7k tok/s in two A/B pairs (tests/bench/RESULTS.md, session 12).
  bool prefill_half_outputs = true;
  // Decode attention keys per split: 0 picks by context (the split kernel 64; the cluster
  // kernel 32 up to 512 keys, else 64); 32, 64 or 128 fixes it (fewer splits, fewer blocks).
  // Anything else: InvalidArgument.
  int attn_split_keys = 0;
  // Decode steps whose rows are distinct sequences: RoPE, the K/V write and attention in one
  // kernel instead of two (kernels::LaunchRopeSplitAttention, or up to 1024 keys
  // kernels::LaunchRopeDecodeAttention, as rope_split_attention says).
  bool fuse_rope_attention = true;
  // Where those steps take kernels::LaunchRopeSplitAttention (K/V rows held in registers, long
  // splits walked in tiles): 0 never (the RoPE kernel, then the split kernel of attention.cu),
  // 1 past the cluster kernel's reach (more than 1024 keys; below, the cluster kernel, K/V in
  // shared memory, 32-key splits), 2 always (64-key splits below 1024 keys). Same-process A/B
  // on an H200, 2 against 1 (tests/bench/RESULTS.md, session 27): decode at 128 context 128g
  // +0.8%, `main` +0.2 to +0.4%, 64g +0.2%, 32g the same; at 2048 context the same kernel.
  // Needs fuse_rope_attention.
  int rope_split_attention = 2;
  // Splits per (row, head) of that kernel past 1024 keys (with attn_split_keys 0): each of a
  // multiple of 64 keys, about this many (0: 64-key splits, as below). Fewer, longer splits
  // mean fewer blocks and partials: at 2048 context on an H200, 192-key splits (12) beat 64
  // (+8-10%), 128 and 256 (tests/bench/RESULTS.md, session 11).
  int attn_long_splits = 12;
  // Its splits (at most 16) as one thread-block cluster per (row, head), merged in shared
  // memory instead of through global memory by the last block: H200 2048-context decode
  // +0.2 to +1.8% in each of 4 A/B pairs on `main` and 128g (tests/bench/RESULTS.md, session 11).
  bool split_attention_cluster = true;
  // Benchmark diagnosis only (outputs are garbage): bit i leaves op i out of every layer of
  // decode-shaped steps, 1 q|k|v, 2 attention, 4 o, 8 gate|up, 16 down; 32 the lm_head. The
  // step-time difference is the op's cost inside the replayed graph.
  unsigned diagnostic_skip_ops = 0;
  // The same for prefill forwards (> 8 rows; bit 2 also leaves RoPE out), plus 64: the GPTQ
  // dequantization (the GEMMs read a stale scratch), 128: the act-order gather of x. Caution:
  // the GEMMs after a left-out op read stale or never-written (zero) operands, and on an H200
  // a GEMM over zeros draws less power and runs faster, so a difference overstates the op's
  // own cost (tests/bench/RESULTS.md, session 6).
  unsigned diagnostic_skip_prefill_ops = 0;
  // One-row decode steps as ONE persistent cooperative kernel (kernels/decode_step.h), when
  // the model fits it (one fused GPTQ matrix per projection, uniform groups, warp GEMV on).
  // Off by default: measured slower than the layered kernels on an H200 (488.7 vs 650.2 tok/s,
  // tests/bench/RESULTS.md, session 5): its grid barriers cost 2.3-3.9 us each, no less
  // than a PDL kernel boundary. Attention parts per head at most persistent_attn_parts (1..32;
  // tests lower it so that parts span several 32-key tiles); blocks per SM 2 or 3 (the
  // kernel's register budget).
  bool persistent_decode = false;
  int persistent_attn_parts = 32;
  int persistent_blocks_per_sm = 2;
  bool diagnostic_phase_clock = false;  // benchmarks: CudaPersistentDecodePhaseMicros
};

// Errors: Unavailable "no CUDA device" when none is visible; InvalidArgument for a bad
// device index; ResourceExhausted (sizes named) when the model does not fit, with every
// partial allocation freed; Unimplemented for shapes the kernels do not support.
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunnerWithOptions(
    std::shared_ptr<const ModelWeights> weights, const RunnerOptions& options, const CudaOptions& cuda);

// Whether `runner` (a CUDA runner) runs one-row decode steps as the persistent kernel; false
// for any other runner. For tests and tools.
bool CudaPersistentDecodeActive(const ModelRunner& runner);

// Diagnostic (CudaOptions::diagnostic_phase_clock): the last persistent step's phase
// durations in us averaged over layers (q|k|v, attention, o, gate|up, down) and the step.
std::vector<double> CudaPersistentDecodePhaseMicros(const ModelRunner& runner);

// Whether `runner` (a CUDA runner) keeps fp16 prefill weights for every GPTQ projection
// (CudaOptions::prefill_weights, kAuto's decision included); false for any other runner.
bool CudaPrefillWeightsResident(const ModelRunner& runner);

// Number of visible CUDA devices (0 when none or no driver). For tests and tools.
int CudaDeviceCount();

}  // namespace llama
