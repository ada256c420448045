# Session 10 run 5 (H200): per-kernel ncu breakdown of one decode step, main and 32g (final code, 7d32c5d).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b ncu" LAYOUTS="main" bash $S
STAGES="make7b ncu" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S
