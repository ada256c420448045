# Session 14 run 2: the warp GEMV with its registers capped for 4 resident blocks per SM
# (64 registers; GemvTuning::warp_min_blocks, --gemv_min_blocks) against 3 (80 registers),
# as sol_bench (run 1) found 4 blocks/SM of 4 loads per lane the fastest read pattern.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT
B=/tmp/llama_gpu/bin
V="warprms:32:0:2:1:7;warprms:32:0:2:1:7:4;warprms:32:528:2:1:7:4;warprms:32:396:2:1:7:4;warprms:32:0:2:1:7"
STAGES="gemv" GEMV_SHAPES="--group 128 --uniform_zeros;--group 32 --act_order --no_perm down --uniform_zeros" GEMV_ARGS="--variants $V" bash $S
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
AB="--gemv_min_blocks=3;--gemv_min_blocks=4;--gemv_min_blocks=4 --gemv_warp_target_blocks=528;--gemv_min_blocks=3;--gemv_min_blocks=4"
STAGES="abx" LAYOUTS="main" BENCH_ARGS="--decode_only --repeat 3" AB_SETS="$AB" bash $S
STAGES="abx" LAYOUTS="gptq-4bit-32g-actorder_True" BENCH_ARGS="--decode_only --repeat 3" AB_SETS="$AB" bash $S
