// GPTQ 4-bit matmul: y[M, N] (+)= x[M, K] · W[K, N], W in the packed layout documented in
// kernels/README.md (AutoGPTQ nibble packing along K, rows act-order sorted so each group is
// contiguous, fp16 scales, uint8 zero points, one group index per 8-row word).
// W may be several projections side by side along N (fused Q|K|V, gate|up): each is a
// segment with its own act-order permutation; they share K and the number of groups.
//   - decode (M <= 8): LaunchGptqGemv, split-K GEMV streaming 16-byte weight loads (issued
//     before the PDL dependency wait), or for one row the warp GEMV (gptq_gemv_warp.cu); it
//     ATOMICALLY ADDS into fp32 `out` (zero it first, or point it at the residual stream).
//     Its input x can be produced in the GEMV's prologue from the previous op's output
//     (RMSNorm, SwiGLU, attention-split combine), so those ops need no kernel of their own.
//   - prefill (M > 8): LaunchGptqDequant writes W^T as fp16 [N, K] in STORED row order,
//     LaunchGatherColumns puts x in each segment's stored order, then GemmF16
//     (dense_matmul.h) runs cuBLAS on tensor cores.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

struct GptqSegment {
  int n_begin = 0, n_end = 0;            // columns [n_begin, n_end), multiples of 4
  const int32_t* perm = nullptr;         // [K] x_perm[k] = x[perm[k]], or null (identity)
  const uint16_t* word_group = nullptr;  // [K/8]: group of rows 8w..8w+7
};
constexpr int kMaxSegments = 3;

struct GptqMatrix {
  int K = 0, N = 0;                      // K % 8 == 0, N % 4 == 0
  const uint32_t* qweight = nullptr;     // [K/8, N]: nibble i of word (w, n) = row 8w+i
  // Tensor-core layout (RepackGptqForMma), used instead of qweight when set: K % 64 == 0,
  // N and every segment boundary % 16 == 0, groups start at multiples of 16.
  const uint32_t* qtiles = nullptr;
  const __half* scales = nullptr;        // [groups, N]
  const uint8_t* zeros = nullptr;        // [groups, N], real zero point 0..16
  // Optional copy of `zeros` at 4 bits (PackGptqZeros4): [groups, N / 2], column 2j in the low
  // nibble of byte j, real zero point = nibble + zeros4_offset. Read by the warp GEMV
  // (GemvTuning::warp_packed_zeros) instead of `zeros`: half its bytes.
  const uint8_t* zeros4 = nullptr;
  int zeros4_offset = 0;
  // Every zero point of the matrix, when they are all equal (UniformGptqZero; AutoGPTQ's
  // sym=True checkpoints, as all four TheBloke branches: 8), else -1. The warp GEMV then
  // loads none (GemvTuning::warp_uniform_zeros).
  int uniform_zero = -1;
  int num_segments = 1;
  GptqSegment seg[kMaxSegments];
  int num_groups = 0;                    // rows of scales / zeros (0: unknown, stream GEMV off)
  int min_group_rows = 16;               // rows of the smallest group (sizes the stream GEMV's staging)
  int group_rows = 0;                    // every segment: group g is rows [g * group_rows, +group_rows) of
                                         // the stored order (0: not so; the warp GEMV needs 32/64/128)
  // A matrix of a layer where some matrix has an act-order permutation (set at upload): there
  // the warp GEMV runs every GEMV in one kernel (GemvTuning::warp_single_kernel); elsewhere
  // (`main`) the lean single kernel measured ~1% slower than the one-trip kernel it replaces.
  bool act_order_layer = false;
};

constexpr int kGemvMaxRows = 8;

// Where the GEMV's input row m comes from (value at input index i, rounded to fp16):
enum class GemvSource {
  kHalf,       // x[m * ldx + i]
  kRmsNorm,    // resid[m * K + i] * rsqrt(mean(resid[m, :]^2) + eps) * norm_weight[i]
  kSwiGlu,     // silu(gate_up[m * 2K + i]) * gate_up[m * 2K + K + i]
  kAttention,  // combine of the decode-attention splits (attention.h) for head i / hd, dim i % hd
};
struct GemvInput {
  GemvSource kind = GemvSource::kHalf;
  const __half* x = nullptr;
  int ldx = 0;
  const float* src = nullptr;            // kRmsNorm: resid [M, K]; kSwiGlu: gate_up [M, 2K]
  const float* norm_weight = nullptr;
  float eps = 0.f;
  const float2* attn_ml = nullptr;       // kAttention: [M * heads * splits] (max, sum)
  const float* attn_acc = nullptr;       //             [M * heads * splits * hd]
  int attn_splits = 0, head_dim = 0;
  // Scratch for the warp-streaming GEMV, or null (that kernel is then not used): x in
  // fragment order (num_segments * K halves) and its per-group sums (num_segments * K / 32).
  __half* xfrag = nullptr;
  float* xsum = nullptr;
};

// warp_target_blocks > 0: this launch's warp GEMV aims its K units at that many blocks
// instead of GemvTuning::warp_target_blocks (one projection sized apart from the others).
cudaError_t LaunchGptqGemv(const GptqMatrix& w, const GemvInput& in, float* out, int ldo, int M,
                           cudaStream_t stream, int warp_target_blocks = 0);

// Decode GEMV kernel choice (process-wide, like SetProgrammaticLaunch). With `stream` on, a
// tensor-core-layout matrix with M <= kGemvStreamMaxRows runs the streaming GEMV
// (gptq_gemv_stream.cu): blocks_per_sm x SMs persistent blocks, each warp streaming a
// contiguous run of 16x64 weight tiles with 4 (ring_deep: 8) 16-byte loads in flight per lane and an L2
// bulk prefetch `l2_prefetch` tiles ahead; otherwise the split-K kernels of gptq_matmul.cu.
struct GemvTuning {
  bool stream = false;
  int blocks_per_sm = 3;
  int l2_prefetch = 8;     // tiles of 512 bytes per warp; 0: off
  bool ring_deep = false;  // 8 loads in flight per lane instead of 4
  bool warp = false;       // M == 1: the warp-streaming GEMV (gptq_gemv_warp.cu) when it fits
  int warp_kb = 32;        // its largest K unit per warp, in 64-row blocks (1..32)
  bool warp_skip_prepare = false;  // benchmarks only: the warp GEMV without its input kernel
  bool warp_rms_in_block = false;  // RMSNorm inputs: every block computes the row's scale itself
  int warp_target_blocks = 0;      // fewest blocks the K units aim for (0: 13 x SMs / 5, ~2.6 per SM)
  // Direct inputs (fp16, SwiGLU, RMSNorm in block) of a block whose columns lie in one
  // segment: act-order indices loaded before the PDL wait, then the unit's inputs and the
  // row's squares in one round trip (gemv_warp_stage.cuh, StageOneTrip), instead of two or
  // three. 0 never, 1 matrices without act-order, 2 every matrix.
  int warp_one_trip = 0;
  // RMSNorm inputs of act-order matrices (K <= 8192): the row times the norm weights staged in
  // shared memory, the unit's rows gathered from there (gemv_warp_stage.cuh, StageRowGather)
  // instead of by random global loads. Before warp_one_trip.
  bool warp_row_gather = false;
  // Group slots (gemv_warp_block.cuh, StreamSlots): each group's partial sums in an mma
  // column of their own, eight groups fixed up at once. A bit per group size: 1 g32, 2 g64,
  // 4 g128.
  int warp_group_slots = 0;
  // The warp GEMV reads GptqMatrix::zeros4 where set (4-bit zero points) instead of zeros.
  bool warp_packed_zeros = false;
  // The warp GEMV reads no zero points where GptqMatrix::uniform_zero says they are all equal.
  bool warp_uniform_zeros = false;
  // g32 with group slots: K units of up to 64 groups (2048 rows, as g64 / g128) instead of 32,
  // the groups' parameters packed in half the shared memory (gemv_warp_block.cuh, PackPar).
  bool warp_g32_wide = false;
  // Every warp GEMV (with warp_row_gather) in one kernel (gemv_warp_block.cuh, kStageAll: the
  // row gather for act-order RMSNorm inputs, one trip for the others, no other staging) where
  // the inputs allow it: one small kernel's code for the four GEMVs of a layer.
  bool warp_single_kernel = false;
};
constexpr int kGemvStreamMaxRows = 4;
// The warp-streaming GEMV (gptq_gemv_warp.cu), one row (M == 1): one warp per 16-column tile
// and K unit (at most tuning.warp_kb 64-row blocks); x computed once per block, or for RMSNorm
// (unless warp_rms_in_block) and attention inputs once per GEMV by an input kernel into
// in.xfrag / in.xsum (skipped with warp_skip_prepare: benchmarks of the GEMV alone).
// cudaErrorNotSupported when it does not fit (layout, groups, scratch).
bool GptqGemvWarpFits(const GptqMatrix& w, const GemvInput& in, int M, int kb_per_unit);
// How the persistent decode kernel (decode_step.h) runs a warp GEMV inside a grid of at most
// max_blocks resident blocks: K units of kb 64-row blocks, ksplit units, `blocks` GEMV
// blocks; the most blocks <= max_blocks, else the fewest. kb == 0: it does not fit.
struct GemvWarpPlan {
  int kb = 0, ksplit = 0, blocks = 0;
};
GemvWarpPlan PlanGptqGemvWarp(const GptqMatrix& w, int max_blocks);
cudaError_t LaunchGptqGemvWarp(const GptqMatrix& w, const GemvInput& in, float* out, const GemvTuning& tuning,
                               cudaStream_t stream);
void SetGemvTuning(const GemvTuning& t);
GemvTuning GetGemvTuning();
// DIAGNOSIS only (llama_bench --gemv_extra_smem, --gemv_carveout): every warp-GEMV launch after
// the call takes `extra_bytes` more dynamic shared memory (unused), and with carveout_percent >= 0
// its kernel the shared-memory carve-out hint of that percentage; process-wide.
void SetGemvWarpSmemDiagnosis(int extra_bytes, int carveout_percent);

// Host: AutoGPTQ-packed q [K/8, N] -> the tensor-core layout (kernels/README.md): for each
// 16-column tile nt and 64-row block kb, 32 lanes x 4 words (one 16-byte load per lane), word
// c holding the lane's eight 4-bit values of the mma.m16n8k16 A fragment of k-tile 4 kb + c.
void RepackGptqForMma(const uint32_t* q, int K, int N, uint32_t* out);
bool GptqMmaLayoutFits(int K, int N);
// Host: zero points [count] (count even) -> GptqMatrix::zeros4 (out: count / 2 bytes) and its
// offset: 0 when every zero is in 0..15, 1 when every zero is in 1..16 (AutoGPTQ's stored
// zero + 1); false (out untouched) when neither holds.
bool PackGptqZeros4(const uint8_t* zeros, size_t count, uint8_t* out, int* offset);
// Host: the value every zero point [count] holds, or -1 when they differ (GptqMatrix::uniform_zero).
int UniformGptqZero(const uint8_t* zeros, size_t count);

// dst[n * K + k] = scale * (q - zero) as fp16 for stored row k (original row perm[k] of n's
// segment): W^T with K in stored order, so y[:, segment] = x_perm W^T[segment]^T with
// x_perm from LaunchGatherColumns (gptq_dequant.cu).
cudaError_t LaunchGptqDequant(const GptqMatrix& w, __half* dst, cudaStream_t stream);
// out[m * K + k] = x[m * ldx + perm[k]] for m < M (K, ldx % 8 == 0, K <= 24576; 16-byte
// aligned x, perm, out): x in a segment's stored order.
cudaError_t LaunchGatherColumns(const __half* x, int ldx, const int32_t* perm, int M, int K, __half* out,
                                cudaStream_t stream);

}  // namespace llama::kernels
