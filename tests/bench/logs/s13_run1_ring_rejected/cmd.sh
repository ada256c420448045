# Session 13 run 1: the warp GEMV's load ring (GemvTuning::warp_ring, off by default) against
# ping-pong sets of 4; every CUDA unit test first (attention_test's session-12 refactor not yet
# run on a GPU). gemv_bench with zeros all 8 (as the engine's checkpoints), then the engine A/B.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test" bash $S
STAGES="gemv" GEMV_SHAPES="--group 128 --uniform_zeros;--group 32 --act_order --no_perm down --uniform_zeros" GEMV_ARGS="--variants warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:1;warprms:32:0:2:1:7:0;warprms:32:0:2:1:7:1" bash $S
R="--gemv_warp_ring=false;--gemv_warp_ring;--gemv_warp_ring=false;--gemv_warp_ring"
STAGES="make7b abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="$R" bash $S
STAGES="make7b abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="$R" bash $S
grep -E "FAILED|PASSED" $OUT/unit.log | head -20
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|abx|gemv" | head
