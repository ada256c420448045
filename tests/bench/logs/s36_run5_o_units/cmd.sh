# Session 36 run 5 (H200): o_proj's K units of 6 64-row blocks (352 blocks,
# --o_gemv_target_blocks=300) against the default 8 (256 blocks) on today's code (the warp
# GEMV's trigger at its first line since session 33; units of 6 were o_proj's before session
# 29 chose 8). No code change: llama_bench's --ab sets, one runner each over the same
# weights, alternating, in one process per layout.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True" bash $S >/dev/null
AB="--o_gemv_target_blocks=256;--o_gemv_target_blocks=300;--o_gemv_target_blocks=256;--o_gemv_target_blocks=300;--o_gemv_target_blocks=300;--o_gemv_target_blocks=256"
for l in main gptq-4bit-64g-actorder_True; do
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l --repeat 2 --prefill_fp16_weights=false --long_context 0 --ab "$AB" > $OUT/ab_$l.log 2>&1
  echo "== $l"; grep -E "o_gemv|rror" $OUT/ab_$l.log
done
