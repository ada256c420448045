# Session 28 run 4 (H200), the session's final code (session 27's q_first option removed, the
# attention kernels as in 930200a; BlockInvRms through BlockRmsScale): the fixture tests, 7B
# CUDA vs CPU on `main` (its one-trip GEMV's machine code changed), the issue 6 table of all
# four layouts (the split kernel the default since session 27: the first full table with it),
# and `main`'s per-kernel timeline at 128 and 2048 context after 1 s idle.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
STAGES="make7b" bash $S >/dev/null
STAGES="check7b" LAYOUTS="main" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
grep -E "FAILED|PASSED" $OUT/check7b.log | head -5
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token" $OUT/bench.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 64 --repeat 1 \
  --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline.log 2>&1; echo "timeline exit $?"
grep -E "context .*recording|step:" $OUT/timeline.log | cut -c1-150
