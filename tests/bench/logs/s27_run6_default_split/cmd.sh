# Session 27 run 6 (H200): the final code, with the split attention kernel (64-key splits)
# the decode default at every context (CudaOptions::rope_split_attention 2): the fixture
# tests (the default path and the cluster kernel as an option, vs CPU), the long-context
# test, and main's decode with the defaults.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran|cluster kernel" $OUT/unit.log | head -12
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128 > $OUT/bench_main.log 2>&1; echo "bench exit $?"
grep -E "decode|context" $OUT/bench_main.log | head -8
