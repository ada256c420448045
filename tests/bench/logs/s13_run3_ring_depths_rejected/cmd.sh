# Session 13 run 3: the ring of 8 loads lost 10% (run 1). Do fewer loads in flight win?
# Rings of 4 (3-4 in flight) and 6 (5-6) against the default ping-pong sets of 4 (4-8 in flight);
# their tests first; then one 2048-token prefill under ncu (boost clocks, warm caches).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export GTEST_FILTER='*GptqMatmulTest*:*UniformZeros*:*GroupSlots*:*LongContext*'
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test long_context_test" bash $S
unset GTEST_FILTER
V="warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:4;warprms:32:0:2:1:7:6;warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:4;warprms:32:0:2:1:7:6"
STAGES="gemv" GEMV_SHAPES="--group 128 --uniform_zeros;--group 32 --act_order --no_perm down --uniform_zeros" GEMV_ARGS="--variants $V" bash $S
R="--gemv_warp_ring=0;--gemv_warp_ring=4;--gemv_warp_ring=6;--gemv_warp_ring=0;--gemv_warp_ring=4;--gemv_warp_ring=6"
STAGES="make7b abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --decode_only --long_context 0" AB_SETS="$R" bash $S
STAGES="ncu_prefill" LAYOUTS=main NCU_PREFILL_FLAGS="--clock-control none --cache-control none" bash $S
grep -E "FAILED|Failure" -A3 $OUT/unit.log | head -20
grep -E "layer" $OUT/gemv.log
