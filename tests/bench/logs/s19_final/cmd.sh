# Session 19 final run (H200): the cluster merge with pushed partials as the only merge
# (kernels/cluster_merge.cuh); every CUDA unit test, 7B CUDA vs CPU on main and 32g, the bench
# of the 4 layouts (the issue 6 table), the sampled-decode row on main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
grep -E "FAILED" $OUT/unit.log | head -10
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v -- "--ab"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --temperature 0.6 --top_p 0.9 > $OUT/sampled_main.log 2>&1
echo "sampled exit $?"; grep -E "tok/s" $OUT/sampled_main.log | tail -3
