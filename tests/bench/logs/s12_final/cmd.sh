# Session 12 final run (H200): every CUDA unit test, 7B CUDA vs CPU on main and 32g, the bench
# of the 4 layouts, the service stage; then the uniform-zeros A/B on 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test" bash $S
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
STAGES="make7b bench service" BENCH_ARGS="--repeat 3" bash $S
STAGES="abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="--gemv_uniform_zeros=false;--gemv_uniform_zeros" bash $S
grep -E "FAILED" $OUT/unit.log | head -10
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v -- "--ab"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b|service|llamactl|memcheck"
