# Session 14 run 4: prefill q|k|v and gate|up GEMMs through cublasLt with the 168x128 tile
# (CudaOptions::prefill_lt_tiles, kernels::LtGemm): unit tests (LtGemmTest vs float64, the
# fixture prefill paths), 7B CUDA vs CPU and the 2048-token Lt-vs-GemmEx check on main and 32g,
# A/B prefill in one process per layout, then the bench of main and 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test small_kernels_test" bash $S
grep -E "FAILED|Failure|LtGemm" -A3 $OUT/unit.log | head -20
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
AB="--prefill_lt=false;--prefill_lt;--prefill_lt=false;--prefill_lt"
STAGES="abx" LAYOUTS="main" BENCH_ARGS="--ab_prefill --repeat 5" AB_SETS="$AB" bash $S
STAGES="abx" LAYOUTS="gptq-4bit-32g-actorder_True" BENCH_ARGS="--ab_prefill --repeat 5" AB_SETS="$AB" bash $S
STAGES="bench" LAYOUTS="main gptq-4bit-32g-actorder_True" BENCH_ARGS="--repeat 3" bash $S
grep -E "^=== |loaded in|decode tok|prefill tok|first token|at 2048" $OUT/bench.log
