# Session 12 ncu run (H200): per-kernel breakdown of one decode step (graphs off, caches
# flushed per kernel), 32g then main, final code.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
for l in gptq-4bit-32g-actorder_True main; do STAGES="make7b ncu" LAYOUTS=$l bash $S; done
