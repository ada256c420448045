// Warp-streaming GPTQ GEMV for one decode row (M == 1), tensor-core layout, uniform groups of
// 32/64/128 rows (kernels/README.md). Why: the split-K kernels of gptq_matmul.cu give every
// block a prologue (RMSNorm over the whole row, the act-order gather of x) and a short life
// of one 32 KB load, and spend ~14 instructions per 8 weights. Here each block computes the x
// of its K unit once, in mma B-fragment order with its per-group sums (plain fp16, SwiGLU,
// RMSNorm with the row's scale; each segment's act-order permutation applied), and each warp
// then streams one 16-column tile over that unit with kUnroll 16-byte loads in flight per
// lane at 6 instructions per 8 weights (the zero point is taken out per group through the
// sums instead of per weight). A separate input kernel
// (PrepareXKernel, into `xfrag` / `xsum`) computes it instead for attention-split inputs and
// for RMSNorm with warp_rms_in_block off; it costs a kernel boundary (tests/bench/RESULTS.md,
// session 3).
//
// The block itself (work split, staging, the stream) is GemvWarpBlock in gemv_warp_block.cuh
// (its x staging and shared memory in gemv_warp_stage.cuh), shared with the persistent decode
// kernel (decode_step.cu).
#include "kernels/gemv_warp_block.cuh"
#include "kernels/launch.h"

namespace llama::kernels {
namespace {

using namespace gemv;

// Prepare block `b` of the GEMV's input: for every segment s and stored row k,
// xfrag[s * K + XFragIndex(k)] = x[perm_s[k]] (fp16), and xsum[s * K / G + k / G] = the sum
// of those fp16 values over each group of G rows. Called after the PDL wait; whole block.
__device__ __forceinline__ void PrepareXBlock(const GptqMatrix& w, const GemvInput& in, int b, float* red,
                                              float* inv_rms) {
  const int total = w.num_segments * w.K;
  const int idx0 = b * kPrepPerBlock + threadIdx.x * kPrepPer;  // K % 64 == 0: one segment
  const bool here = idx0 < total;
  const int s = here ? idx0 / w.K : 0, k0 = idx0 - s * w.K;
  BlockInvRms<1>(in, w.K, red, inv_rms);
  const float inv = in.kind == GemvSource::kRmsNorm ? inv_rms[0] : 1.f;
  const float sum =
      here ? StageFourRows(in, w.K, SegmentPerm(w, s), k0, k0, inv, in.xfrag + static_cast<size_t>(s) * w.K) : 0.f;
  const int lanes = w.group_rows / kPrepPer;  // a group is 8, 16 or 32 aligned lanes
  const float group = GroupSum(sum, lanes);
  if (here && (threadIdx.x & (lanes - 1)) == 0) in.xsum[(s * w.K + k0) / w.group_rows] = group;
}

// Input kernel: one PrepareXBlock per block.
__global__ void __launch_bounds__(kThreads) PrepareXKernel(GptqMatrix w, GemvInput in) {
  __shared__ float red[kWarps];
  __shared__ float inv_rms[1];
  AllowDependents();
  WaitForPrerequisites();
  PrepareXBlock(w, in, blockIdx.x, red, inv_rms);
}

// GEMV kernel: one GemvWarpBlock per CUDA block (kernels/gemv_warp_block.cuh); weights,
// scales and zeros are loaded before the PDL wait. kStageRowGather: K floats of dynamic
// shared memory for the row.
template <int G, int kStage, bool kSlots>
__global__ void __launch_bounds__(kThreads, 3) GptqGemvWarpKernel(GptqMatrix w, GemvInput in, float* __restrict__ out,
                                                                  int ksplit, int kb_per_unit, bool rms_in_block) {
  using Block = GemvWarpBlock<G, kStage, kSlots>;
  __shared__ __align__(16) unsigned char smem[GemvWarpSmemBytes(Block::kParWarpBytes, Block::kXSegments)];
  extern __shared__ float4 dynamic_smem[];
  GemvWarpSmem sm = GemvWarpSmem::At(smem, Block::kParWarpBytes, Block::kXSegments);
  if (kStage == kStageRowGather || kStage == kStageAll) sm.row = reinterpret_cast<float*>(dynamic_smem);
  // The next kernel may launch at once, not only once Pre's loads and staging are done (one
  // memory round trip of the grid's last block): decode +0.3 to +1.2% (tests/bench/RESULTS.md,
  // session 33).
  AllowDependents();
  Block block;
  block.Pre(w, blockIdx.x, ksplit, kb_per_unit, sm);
  WaitForPrerequisites();
  block.Post(w, in, out, rms_in_block, sm);
}

}  // namespace

namespace {
constexpr int kMaxRowGatherK = 8192;  // kStageRowGather: K floats of dynamic shared memory

using WarpKernelFn = void (*)(GptqMatrix, GemvInput, float*, int, int, bool);
template <int G, bool kSlots>
WarpKernelFn WarpKernelFor(int stage) {
  return stage == kStageAll         ? GptqGemvWarpKernel<G, kStageAll, kSlots>
         : stage == kStageRowGather ? GptqGemvWarpKernel<G, kStageRowGather, kSlots>
         : stage == kStageOneTrip   ? GptqGemvWarpKernel<G, kStageOneTrip, kSlots>
                                    : GptqGemvWarpKernel<G, kStageTwoTrip, kSlots>;
}
template <bool kSlots>
WarpKernelFn WarpKernelOf(int group_rows, int stage) {
  return group_rows == 32   ? WarpKernelFor<32, kSlots>(stage)
         : group_rows == 64 ? WarpKernelFor<64, kSlots>(stage)
                            : WarpKernelFor<128, kSlots>(stage);
}
// The kernel for group size 32, 64 or 128, a staging (kStage*) and the group-slot stream.
WarpKernelFn WarpKernel(int group_rows, int stage, bool slots) {
  return slots ? WarpKernelOf<true>(group_rows, stage) : WarpKernelOf<false>(group_rows, stage);
}

// The matrix and a K unit of kb_per_unit 64-row blocks suit the warp GEMV (scratch aside).
// wide: g32 units of up to kMaxWideUnitGroups groups (packed parameters, group slots only).
bool UnitFits(const GptqMatrix& w, int kb_per_unit, bool wide = false) {
  const int G = w.group_rows;
  if (!w.qtiles || (G != 32 && G != 64 && G != 128) || w.K % G != 0) return false;
  return kb_per_unit >= 1 && kb_per_unit <= kMaxUnitKb && kb_per_unit * 64 % G == 0 &&
         kb_per_unit * 64 / G <= (wide && G == 32 ? kMaxWideUnitGroups : kMaxUnitGroups);
}
}  // namespace

bool GptqGemvWarpFits(const GptqMatrix& w, const GemvInput& in, int M, int kb_per_unit) {
  return M == 1 && in.xfrag && in.xsum && UnitFits(w, kb_per_unit);
}

namespace {
// The K unit per warp: K cut into the fewest equal units (64-row blocks, group-aligned, at
// most max_kb) that give `target` blocks (0: 13 x SMs / 5, about 2.6 per SM; measured on an
// H200 against 2 x SMs - 16 with units of at most 16: +3.5% decode, it takes gate|up to
// 32-block units), else the most units. Equal units: a short last unit idles its SMs.
int PickUnit(const GptqMatrix& w, const GemvInput& in, int max_kb, int target, bool wide) {
  const int sms = SmCount() > 0 ? SmCount() : 132;
  const int tile_blocks = (w.N / 16 + kWarps - 1) / kWarps, kb_count = w.K / 64;
  const int align = w.group_rows > 64 ? w.group_rows / 64 : 1;
  int pick = 0;
  for (int ksplit = 1; ksplit <= kb_count; ++ksplit) {
    const int kb = ((kb_count + ksplit - 1) / ksplit + align - 1) / align * align;
    if (kb > max_kb || !GptqGemvWarpFits(w, in, 1, kb) && !(wide && in.xfrag && in.xsum && UnitFits(w, kb, true)))
      continue;
    pick = kb;
    if (tile_blocks * ((kb_count + kb - 1) / kb) >= (target > 0 ? target : 13 * sms / 5)) break;
  }
  return pick;
}
}  // namespace

namespace {
int g_extra_smem = 0, g_carveout = -1;  // SetGemvWarpSmemDiagnosis (-1: cudaSharedmemCarveoutDefault)
bool g_smem_diagnosis = false;          // once set, every launch sets both attributes again
}  // namespace

void SetGemvWarpSmemDiagnosis(int extra_bytes, int carveout_percent) {
  g_extra_smem = extra_bytes;
  g_carveout = carveout_percent;
  g_smem_diagnosis |= extra_bytes > 0 || carveout_percent >= 0;
}

cudaError_t LaunchGptqGemvWarp(const GptqMatrix& w, const GemvInput& in, float* out, const GemvTuning& tuning,
                               cudaStream_t stream) {
  // g32 units of up to 64 groups need the group-slot kernel (packed parameters).
  const bool wide = tuning.warp_g32_wide && (tuning.warp_group_slots & 1) != 0;
  const int kb = PickUnit(w, in, tuning.warp_kb, tuning.warp_target_blocks, wide);
  const bool prepare = !tuning.warp_skip_prepare;
  if (kb == 0) return cudaErrorNotSupported;
  const bool rms_in_block = tuning.warp_rms_in_block;
  if (prepare && ((in.kind == GemvSource::kRmsNorm && !rms_in_block) || in.kind == GemvSource::kAttention)) {
    const int blocks = (w.num_segments * w.K + kPrepPerBlock - 1) / kPrepPerBlock;
    const cudaError_t e = Launch(PrepareXKernel, dim3(blocks), dim3(kThreads), 0, stream, w, in);
    if (e != cudaSuccess) return e;
  }
  const int ksplit = (w.K / 64 + kb - 1) / kb;
  const dim3 grid(((w.N / 16 + kWarps - 1) / kWarps) * ksplit);
  // One-trip staging (GemvTuning::warp_one_trip): 1 for matrices without act-order, 2 for all.
  bool act_order = false, perm_aligned = true;
  for (int s = 0; s < w.num_segments; ++s) {
    act_order |= w.seg[s].perm != nullptr;
    perm_aligned &= reinterpret_cast<uintptr_t>(w.seg[s].perm) % 16 == 0;  // loaded 4 indices at a time
  }
  const bool one_trip = perm_aligned && (tuning.warp_one_trip >= 2 || (tuning.warp_one_trip == 1 && !act_order));
  // Row gather (GemvTuning::warp_row_gather): RMSNorm inputs of act-order matrices (the row
  // and the norm weights read as float4), where the kernels may take 32 KB more shared memory
  // (set once per process; a device that refuses falls back to the other staging).
  static const cudaError_t attrs = [] {
    cudaError_t e = cudaSuccess;
    for (bool slots : {false, true})
      for (int g : {32, 64, 128})
        for (int stage : {kStageRowGather, kStageAll})
          if (e == cudaSuccess)
            e = cudaFuncSetAttribute(WarpKernel(g, stage, slots), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kMaxRowGatherK * sizeof(float)));
    if (e != cudaSuccess) cudaGetLastError();  // not sticky: leave no error behind for later checks
    return e;
  }();
  const bool row_gather = tuning.warp_row_gather && attrs == cudaSuccess && act_order && perm_aligned &&
                          rms_in_block && in.kind == GemvSource::kRmsNorm && w.K <= kMaxRowGatherK &&
                          reinterpret_cast<uintptr_t>(in.norm_weight) % 16 == 0;
  // One kernel for every GEMV of a layer (GemvTuning::warp_single_kernel, kStageAll): it
  // gathers act-order RMSNorm inputs from the row (only where the row gather may run: it
  // needs the dynamic shared memory, and every segment's permutation) and stages the others
  // in one trip (down's K past kMaxRowGatherK included), which needs inputs the block
  // computes itself. Each block's eight column tiles must lie in one segment: its shared
  // memory holds one segment's x (GemvWarpBlock::kXSegments, to leave L1 more room). It has
  // no other staging: elsewhere the launch takes the two-kernel stagings below.
  const bool direct = in.kind == GemvSource::kHalf || in.kind == GemvSource::kSwiGlu ||
                      (rms_in_block && in.kind == GemvSource::kRmsNorm);
  bool every_perm = true, blocks_in_one_segment = true;
  for (int s = 0; s < w.num_segments; ++s) {
    every_perm &= w.seg[s].perm != nullptr;
    blocks_in_one_segment &= w.seg[s].n_begin % (16 * kWarps) == 0;
  }
  const bool gathers = act_order && rms_in_block && in.kind == GemvSource::kRmsNorm;
  const bool single = tuning.warp_single_kernel && w.act_order_layer && direct && blocks_in_one_segment &&
                      (gathers ? row_gather && every_perm : one_trip);
  const int stage = single ? kStageAll : row_gather ? kStageRowGather : one_trip ? kStageOneTrip : kStageTwoTrip;
  // Group slots (GemvTuning::warp_group_slots): a bit per group size.
  const int slot_bit = w.group_rows == 32 ? 1 : w.group_rows == 64 ? 2 : 4;
  auto kernel = WarpKernel(w.group_rows, stage, (tuning.warp_group_slots & slot_bit) != 0);
  const size_t dynamic = (row_gather ? w.K * sizeof(float) : 0) + g_extra_smem;
  if (g_smem_diagnosis) {  // diagnosis only: room for the row gather too (the same kernel may take it)
    const int most = static_cast<int>(kMaxRowGatherK * sizeof(float)) + g_extra_smem;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, most);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, g_carveout);
    if (e != cudaSuccess) return e;
  }
  GptqMatrix wm = w;
  if (!tuning.warp_packed_zeros) wm.zeros4 = nullptr;     // GemvTuning::warp_packed_zeros
  if (!tuning.warp_uniform_zeros) wm.uniform_zero = -1;  // GemvTuning::warp_uniform_zeros
  return Launch(kernel, grid, dim3(kThreads), dynamic, stream, wm, in, out, ksplit, kb, rms_in_block);
}

GemvWarpPlan PlanGptqGemvWarp(const GptqMatrix& w, int max_blocks) {
  const int tile_blocks = (w.N / 16 + kWarps - 1) / kWarps, kb_count = w.K / 64;
  GemvWarpPlan best;
  if (w.K % 64 != 0) return best;
  for (int kb = 1; kb <= kb_count; ++kb) {
    if (!UnitFits(w, kb)) continue;
    const int ksplit = (kb_count + kb - 1) / kb, blocks = tile_blocks * ksplit;
    const bool better = best.kb == 0 || (blocks <= max_blocks ? best.blocks > max_blocks || blocks > best.blocks
                                                              : blocks < best.blocks);
    if (better) best = {kb, ksplit, blocks};
  }
  return best;
}

}  // namespace llama::kernels
