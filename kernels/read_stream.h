// Read-only streaming kernels: the speed of light of a memory-bound decode step, for the
// sol_bench tool (engine/tools/sol_bench_main.cc). They read bytes the way the warp GEMV
// does (16-byte evict-first loads, each warp a contiguous run, a set of `unroll` loads in
// flight per lane, the first set issued before the PDL wait) and do nothing with them but
// an XOR, so their time is what streaming those bytes costs with no arithmetic, staging or
// atomics: the floor under any GEMV chain with the same kernel boundaries.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace llama::kernels {

struct ReadStreamTuning {
  int blocks_per_sm = 2;   // grid = blocks_per_sm x SMs blocks of 256 threads
  int unroll = 4;          // 16-byte loads per lane in flight: 2, 4 or 8 (the persistent phases: 4 or 8)
  bool pre_wait = true;    // the first set of loads issued before the PDL wait
  bool wait = true;        // false: no PDL wait at all (kernels of a chain fully independent)
  bool xor_into_sink = false;  // tests: every word read XORed into *sink (else sink untouched)
  // 0: each warp reads one contiguous run (the warp GEMV's static split). > 0: the lines are
  // cut into chunks of this many (a multiple of `unroll`); warp w reads chunk w first (its
  // first set before the PDL wait), then takes the next free chunk from a counter (work
  // stealing: a warp that DRAM serves faster reads more), the claim issued a chunk ahead.
  // Measured (H200, session 26): the claims on one counter serialize at ~1 ns each, so even
  // the flat stream drops to 54% (8-line chunks) or 79% (16) of the copy bandwidth.
  int dyn_chunk_lines = 0;
  // > 0 (static runs only): each warp streams its run through a ring of this many stages of
  // `bulk_stage_lines` 512-byte lines in shared memory, lane 0 refilling a stage with one
  // cp.async.bulk (TMA) per stage as soon as the warp has read it: bytes in flight set by
  // shared memory instead of registers. 2, 4 or 8 stages. Measured (H200, session 26): at 2
  // blocks per SM, 2 stages of 8 lines read a layer's chain in 25.9 us, as 4 blocks per SM
  // of registers do (the warp GEMV's 3 blocks per SM: 33.7); the warp GEMV built on such a
  // ring lost 19-39% (tests/bench/RESULTS.md, session 26).
  int bulk_stages = 0;
  int bulk_stage_lines = 4;
  // Static runs only: warp w of W reads the sets of `unroll` lines w, w + W, w + 2 W, ... (a
  // grid-stride walk: at any moment the grid reads one contiguous span) instead of one
  // contiguous run of its own. sol_bench's fifth config field "s".
  bool strided = false;
  // Static runs only, unroll 4 or 8 (sol_bench's fifth field "xC" / "pC"): the lines of each
  // chunk of `spread_chunk` lines of a warp's run (C % unroll == 0) are read in a different
  // order, each line once: 1 (x) a set's loads are single lines from `unroll` equal parts of
  // the chunk (set s: lines s, s + C/U, s + 2C/U, ...), 2 (p) pairs of adjacent lines from
  // unroll / 2 parts; a last chunk shorter than C is spread over its own length (in order if
  // that is not a multiple of unroll). The warp GEMV's set is 4 adjacent lines (2 KB), the
  // granule the TMA rings of session 26 streamed slowest.
  int spread = 0;
  int spread_chunk = 16;
};

// Optional extras of LaunchReadStream: `counter` (dyn_chunk_lines > 0: one zeroed word per
// launch) and `times` (non-null: lane 0 of warp w records %globaltimer, ns, at entry, after
// the PDL wait and at its end into times[3 w .. 3 w + 2]; grid x 8 warps of 3 values).
struct ReadStreamExtras {
  uint32_t* counter = nullptr;
  unsigned long long* times = nullptr;
};

// Reads bytes [0, n16 * 16) of `p` (16-byte aligned, n16 % 32 == 0: whole 512-byte lines).
// With t.xor_into_sink every 32-bit word read is XORed into *sink (one atomic per warp), so a
// test can check that each word was read once; otherwise *sink is written only if a warp's
// XOR is one value the bench's data never gives: the loads stay, with no traffic at the end.
cudaError_t LaunchReadStream(const void* p, size_t n16, const ReadStreamTuning& t, uint32_t* sink,
                             cudaStream_t stream, const ReadStreamExtras& extras = {});
// Blocks of LaunchReadStream's grid for `t` (0: the configuration does not fit).
int ReadStreamGrid(const ReadStreamTuning& t);

// Phases of a persistent read kernel: `phases` runs, run i reading bytes [0, n16[i] * 16) of
// ptr[i] (n16[i] % 32 == 0; words XORed into *sink as above), separated by software grid barriers (every block of the grid resident: launched
// cooperatively); before a barrier each block issues its first set of loads of the next run.
// `barrier` is one zeroed word; ptr and n16 are device arrays of `phases` entries.
cudaError_t LaunchReadPhases(const void* const* ptr, const size_t* n16, int phases, const ReadStreamTuning& t,
                             uint32_t* barrier, uint32_t* sink, cudaStream_t stream);

}  // namespace llama::kernels
