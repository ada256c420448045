# Session 36 run 4 (H200), the session's final code (8e2a559: the advance kernel writing the
# ids into pinned host memory; LoadEightVec as two Load4 calls): the CUDA tests, llamad
# --backend=cuda end to end (its greedy requests take DecodeArgmax), the issue 6 table of all
# four layouts, and main's per-kernel timeline after 1 s idle. Carried without gemm_bench,
# gemv_bench, sol_bench and synthetic_7b_test (the 64 MiB limit; no 7B CUDA-vs-CPU check:
# no decode arithmetic changed since session 34's).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="attention_test long_context_test gptq_matmul_test cuda_fixture_test sampling_test small_kernels_test cuda_errors_test" bash $S >/dev/null
grep -E "unit " $OUT/summary.txt | cut -c1-160
STAGES="service" bash $S >/dev/null
grep -E "service" $OUT/summary.txt | cut -c1-200
STAGES="make7b" bash $S >/dev/null
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token|copy bw" $OUT/bench.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 64 --repeat 1 \
  --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline.log 2>&1; echo "timeline exit $?"
grep -E "context .*recording|step:" $OUT/timeline.log | cut -c1-150
