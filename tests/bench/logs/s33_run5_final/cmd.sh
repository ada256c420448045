# Session 33 run 5 (H200), the session's final code (the split attention kernel's cluster merge
# with each block's partial held in registers, MergeClusterSplitsHeld; main's one-trip warp
# GEMV letting the next kernel launch at its first line): the attention, long-context, GEMV
# and fixture CUDA tests, the issue 6 table of all four layouts, 7B CUDA vs CPU on main, and
# main's per-kernel timeline at 128 and 2048 context after 1 s idle.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="attention_test long_context_test gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
grep -E "unit " $OUT/summary.txt | cut -c1-160
STAGES="make7b" bash $S >/dev/null
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token|copy bw" $OUT/bench.log
STAGES="check7b" LAYOUTS="main" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 64 --repeat 1 \
  --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline.log 2>&1; echo "timeline exit $?"
grep -E "context .*recording|step:" $OUT/timeline.log | cut -c1-150
