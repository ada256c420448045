# Session 13 run 6: prefill RMSNorm writing act-order q|k|v's and gate|up's input in stored
# order (CudaOptions::prefill_norm_gather, off by default) instead of a gather kernel after it.
# Its tests (small_kernels_test bits, fixture prefill), then the prefill A/B on 32g and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test cuda_fixture_test" bash $S
R="--prefill_norm_gather=false;--prefill_norm_gather;--prefill_norm_gather=false;--prefill_norm_gather"
STAGES="make7b abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 5 --ab_prefill" AB_SETS="$R" bash $S
STAGES="make7b abx" LAYOUTS=gptq-4bit-128g-actorder_True BENCH_ARGS="--repeat 5 --ab_prefill" AB_SETS="$R" bash $S
grep -E "FAILED|Failure" -A3 $OUT/unit.log | head -20
grep -h "stored order vs norm" $OUT/unit.log
