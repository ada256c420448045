// Causal attention over the fp16 KV cache with grouped-query heads (query head h reads kv
// head h / (H / KVH)). Cache for one layer: [slots][max_ctx][KVH][hd] fp16; q fp16 [rows, H*hd];
// out fp16 [rows, H*hd]; softmax scale 1/sqrt(hd), fp32 softmax and accumulation.
//
// Decode (any rows, each with its own slot and position; also correct for prefill rows):
//   flash-decoding — the keys 0..pos[m] are cut into kAttnSplitKeys-key splits, one block per
//   (row, head, split) writes a partial (max, sum, acc[hd]); a combine kernel merges them.
//   `splits` is fixed at launch (graph-friendly): ceil(max key count / kAttnSplitKeys) or more;
//   blocks past a row's keys write an empty partial. Requires hd % 8 == 0, hd <= 256.
// Prefill (one slot, rows at consecutive positions start..start+T-1): cuBLAS strided-batched
//   S = Q K^T per kv head, a causal softmax kernel writes P (fp16), then O = P V.
#pragma once

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/launch.h"

namespace llama::kernels {

constexpr int kAttnSplitKeys = 128;  // most keys per split

struct AttnShape {
  int heads = 0, kv_heads = 0, head_dim = 0, max_ctx = 0;
};

// partial_ml: [rows * H * splits] float2; partial_acc: [rows * H * splits * hd] float.
// split_keys (32, 64 or 128) keys per split; rows need splits * split_keys >= pos + 1.
// LaunchDecodeAttention writes the partials; with `combined` set, the last block of each
// (row, head) to finish also merges them into combined fp16 [rows, H*hd], counting arrivals
// in `arrivals` (uint32 [rows * H], zero before the first launch; left zero after each).
// Otherwise a GEMV prologue can combine them (gptq_matmul.h), or LaunchAttentionCombine
// merges them into out fp16 [rows, H*hd]. zero[0, zero_count) is cleared on the way (see
// ZeroByGrid in launch.h).
cudaError_t LaunchDecodeAttention(const __half* q, const __half* k_cache, const __half* v_cache,
                                  const int32_t* slot, const int32_t* pos, const AttnShape& shape,
                                  int rows, int splits, int split_keys, float2* partial_ml,
                                  float* partial_acc, cudaStream_t stream, float* zero = nullptr,
                                  size_t zero_count = 0, __half* combined = nullptr,
                                  uint32_t* arrivals = nullptr);
cudaError_t LaunchAttentionCombine(const float2* partial_ml, const float* partial_acc, const AttnShape& shape,
                                   int rows, int splits, __half* out, cudaStream_t stream);

// One decode step whose rows are distinct sequences (no two rows share a slot), in one
// kernel: for row m at position pos[m], q and k heads of the fp32 projection
// qkv [rows, ld_qkv] = [q (H*hd) | k (KVH*hd) | v (KVH*hd)] are rotated (RoPE table as in
// rope.h), the new k, v are written to the cache at pos[m], and out fp16 [rows, H*hd] gets
// the attention over keys 0..pos[m] — LaunchRopeStoreKv followed by LaunchDecodeAttention,
// minus a launch, the q round trip and the global-memory merge: the `splits` blocks of
// split_keys (1..kAttnSplitKeys) keys of one (row, head) form a thread-block cluster, and
// the others push their partials into the first's shared memory, which merges them
// (kernels/cluster_merge.cuh). splits <=
// kRopeAttnMaxSplits with splits * split_keys > every pos[m].
// positions_final: slot and pos hold their final values before this kernel starts (true in a
// replayed decode graph; false when a kernel before it in the stream may write them): the
// cached keys are then copied to shared memory before the PDL wait, else only prefetched
// into L2. `zero` is cleared on the way. Requires hd = 8 * 2^i <= 256.
// out_perm (optional, [H * hd], needs hd <= 128): dim d of head h goes to
// out[m * H * hd + out_perm[h * hd + d]] instead of h * hd + d. The engine passes the inverse
// of o_proj's act-order permutation, so that o_proj reads its input in order instead of
// gathering it (CudaOptions::attn_out_perm).
constexpr int kRopeAttnMaxSplits = 16;
// The most keys the runner gives the cluster kernel: kRopeAttnMaxSplits splits of 64 keys.
constexpr int kRopeAttnMaxKeys = kRopeAttnMaxSplits * 64;
cudaError_t LaunchRopeDecodeAttention(const float* qkv, int ld_qkv, const float2* rope_table, __half* k_cache,
                                      __half* v_cache, const int32_t* slot, const int32_t* pos,
                                      const AttnShape& shape, int rows, int splits, int split_keys,
                                      bool positions_final, __half* out, cudaStream_t stream, ZeroSpans zero = {},
                                      const int32_t* out_perm = nullptr);
size_t RopeDecodeAttentionSmemBytes(int head_dim, int split_keys, int splits);
// Diagnosis: with `on`, later LaunchRopeDecodeAttention calls run a variant whose blocks
// (split, head h < kAttnClockHeads, row 0) record clock64 at points 0..10 of their path
// (entry, before / after the PDL wait, zeroing done, q rotated, K/V in shared memory, scores,
// softmax statistics, P.V, merge start, end), %globaltimer after the wait (11), at the end
// (12) and at entry (13), the launch's splits (14) and whether the split holds the new key
// (15), and in rank 0 only clock64 when its merge barrier completed (16), after the ranks'
// weights (17), the denominator (18) and the output (19). ReadAttentionClock:
// [kAttnClockHeads][kRopeAttnMaxSplits][kAttnClockSlots] as the last launch left them (splits
// past its count are older; empty on error).
// The split kernel (LaunchRopeSplitAttention) runs a clocked variant too, its blocks (split <
// kRopeAttnMaxSplits) recording: entry (0), its first tile's loads issued (1), after the wait
// (2), zeroing done (3), q rotated (4), the new key rotated and written (5), every tile's
// scores, softmax and P.V (6), the warp's row groups merged (7), the block's partial (8),
// merge start (9) and end (10); 11-19 as above (16-19 with the cluster merge only).
// ReadAttentionClock reads the buffer of the kernel launched last with the clock on
// (AttentionClockKernel: 0 none yet, 1 the cluster kernel, 2 the split kernel).
constexpr int kAttnClockHeads = 64, kAttnClockSlots = 20;
void SetAttentionClock(bool on);
std::vector<uint64_t> ReadAttentionClock();
int AttentionClockKernel();

// The same step for any context (rows distinct sequences, splits * split_keys > every pos[m],
// split_keys >= 1): RoPE, the K/V write at pos[m], then flash-decoding whose `splits` blocks
// per (row, head) write partials (partial_ml / partial_acc as for LaunchDecodeAttention) and
// the last to finish merges them into out fp16 [rows, H*hd] (arrivals as there); with
// `cluster` (splits <= kRopeAttnMaxSplits) the blocks of a (row, head) form a thread-block
// cluster and merge through shared memory instead (partial_ml, partial_acc, arrivals unused).
// Each thread holds its rows of K and V in registers, a tile of 8 rows at a time (64 keys per
// tile at hd 128), all loads of a tile issued at once (with positions_final, the first
// tile's before the PDL wait). `zero` is cleared on the way. Requires hd = 8 * 2^i <= 256.
// out_perm as for LaunchRopeDecodeAttention, with `cluster` only.
cudaError_t LaunchRopeSplitAttention(const float* qkv, int ld_qkv, const float2* rope_table, __half* k_cache,
                                     __half* v_cache, const int32_t* slot, const int32_t* pos, const AttnShape& shape,
                                     int rows, int splits, int split_keys, bool positions_final, float2* partial_ml,
                                     float* partial_acc, __half* out, uint32_t* arrivals, cudaStream_t stream,
                                     ZeroSpans zero = {}, bool cluster = false, const int32_t* out_perm = nullptr);

// Scratch the prefill path needs for q_rows query rows: S fp32 [KVH, q_rows, max_ctx] and
// P fp16 of the same count.
size_t PrefillAttentionScratchBytes(const AttnShape& shape, int q_rows);

// Rows t = 0..T-1 at positions start + t in `slot`; processes queries in blocks of
// `q_block` rows (scratch sized by PrefillAttentionScratchBytes(shape, q_block)).
cudaError_t LaunchPrefillAttention(cublasHandle_t handle, const __half* q, const __half* k_cache,
                                   const __half* v_cache, int slot, int start, int T,
                                   const AttnShape& shape, int q_block, void* scratch, __half* out,
                                   cudaStream_t stream);

}  // namespace llama::kernels
