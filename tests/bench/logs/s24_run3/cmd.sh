# Session 24 run 3 (H200), run 2's binaries (default = code 782f46a). Split counts of the
# long-context split attention kernel re-measured on today's kernel (session 11 chose about 12
# splits before the cluster merge and the pre-wait loads): about 20 (128-key splits, 17 of
# them: merged through global memory), 12 (default: 192-key splits), 10 (256-key splits,
# 9), and 12 without the cluster merge; same process, 2048 context, main and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
AB="--attn_long_splits=20;--attn_long_splits=12;--attn_long_splits=10;--attn_long_splits=12;--split_attention_cluster=false;--attn_long_splits=12"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
