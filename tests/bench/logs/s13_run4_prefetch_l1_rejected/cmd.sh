# Session 13 run 4: the warp GEMV asks L1 for its second set of weight lines before the PDL
# wait (GemvTuning::warp_prefetch_l1, off by default): its tests, gemv_bench, engine A/B.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export GTEST_FILTER='*GptqMatmulTest*'
STAGES="unit" UNIT_TESTS="gptq_matmul_test" bash $S
unset GTEST_FILTER
V="warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:1;warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:1"
STAGES="gemv" GEMV_SHAPES="--group 128 --uniform_zeros;--group 32 --act_order --no_perm down --uniform_zeros" GEMV_ARGS="--variants $V" bash $S
R="--gemv_prefetch_l1=false;--gemv_prefetch_l1;--gemv_prefetch_l1=false;--gemv_prefetch_l1"
STAGES="make7b abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="$R" bash $S
STAGES="make7b abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 3 --decode_only --long_context 0" AB_SETS="$R" bash $S
grep -E "FAILED|Failure" -A3 $OUT/unit.log | head -20
grep -E "layer" $OUT/gemv.log
