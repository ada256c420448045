# Session 12 run 6 (H200): with no zero loads, do the warp GEMV's unit sizes still suit 32g?
# Existing flags only (findings for the next session).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 3 --decode_only --long_context 0" AB_SETS="--gemv_warp_target_blocks=264;--gemv_warp_target_blocks=396;--gemv_warp_kb=16;--gemv_warp_target_blocks=0" bash $S
