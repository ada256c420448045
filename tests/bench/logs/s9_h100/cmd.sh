# Session 9 run 4 (H100): the final code's tests and bench.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S
STAGES="check7b" LAYOUTS="gptq-4bit-128g-actorder_True" bash $S
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048|copy bw" $OUT/bench.log
