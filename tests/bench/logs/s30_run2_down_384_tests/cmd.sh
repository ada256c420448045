# Session 30 run 2 (H200): run 1 found the down GEMV faster the more blocks it has (256, 288,
# 320 all slower than the default 352); the one larger cut that fits one wave of 3 blocks per
# SM is 384 (units of 15 of its 172 64-row blocks, 32g and 64g; with 128-row groups, main and 128g,
# units must be even: 14, 416 blocks, a few past one wave).
# Same process, alternating, at 128 context; then every CUDA test and 7B CUDA vs CPU on main
# and 32g with today's defaults.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--down_gemv_target_blocks=384;--down_gemv_target_blocks=0;--down_gemv_target_blocks=384;--down_gemv_target_blocks=0"
for L in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True; do
  echo "=== $L" >> $OUT/ab.log
  timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/$L $R --ab "$AB" >> $OUT/ab.log 2>&1
done
grep -E "^===|^\(base|^--" $OUT/ab.log
STAGES="unit" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|SKIPPED \]" $OUT/unit.log | head -20
STAGES="check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
grep -E "FAILED|PASSED" $OUT/check7b.log | head -5
