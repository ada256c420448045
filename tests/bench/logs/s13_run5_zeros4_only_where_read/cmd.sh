# Session 13 run 5: the 4-bit zero-point copies uploaded only where a kernel may read them
# (not for all-equal zero points when gemv_uniform_zeros is on, the default). Every CUDA unit
# test, 7B CUDA vs CPU on main and 32g, then the bench (device memory, speed unchanged).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" bash $S
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
STAGES="bench" LAYOUTS="main gptq-4bit-32g-actorder_True" BENCH_ARGS="--repeat 3" bash $S
grep -E "FAILED|Failure" -A3 $OUT/unit.log | head -20
grep -E "^=== |loaded in|decode tok|prefill tok|first token|at 2048" $OUT/bench.log
