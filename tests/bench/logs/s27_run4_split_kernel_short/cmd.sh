# Session 27 run 4 (H200), code 891c016: runs 1-2 found that shared memory taken by the
# split attention kernel (32-96 KB a block) costs 10-47% at 2048 context. The cluster
# kernel that serves short contexts keeps each split's K/V rows in ~27 KB of shared memory;
# the split kernel keeps them in registers. Same process: the split kernel at short context
# too (--rope_split_attention=2, measured 7% slower when it was added), main and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--rope_split_attention=2;--rope_split_attention=1;--rope_split_attention=2 --attn_split_keys=64;--rope_split_attention=2"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
