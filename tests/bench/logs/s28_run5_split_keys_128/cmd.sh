# Session 28 run 5 (H200), final code: the split kernel (the short-context default since
# session 27) with 128-key splits at short context (two 64-key register tiles a split, half
# the blocks) against its 64-key default, an existing flag (--attn_split_keys), same-process
# A/B, alternating, `main` and 128g at 128 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--attn_split_keys=128;--attn_split_keys=0;--attn_split_keys=128"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
  grep -E "^===|^\(base|^--" $OUT/ab.log | tail -4
done
