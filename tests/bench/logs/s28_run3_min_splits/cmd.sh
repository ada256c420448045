# Session 28 run 3 (H200): run 2 found exact split counts (no empty split blocks) 0.3-0.7%
# slower than the power-of-two buckets. The other way: at least 8 or 16 splits up to 1024
# keys (--attn_min_splits, new; the blocks past the keys push empty partials), a llama_bench
# built from the working tree (.carry/exp), same-process A/B, alternating, all four layouts
# at 128 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
xz -dc .carry/exp/llama_bench.xz > /tmp/llama_bench_exp && chmod +x /tmp/llama_bench_exp
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--attn_min_splits=8;--attn_min_splits=1;--attn_min_splits=16;--attn_min_splits=8;--attn_min_splits=1"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 120 /tmp/llama_bench_exp --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
  grep -E "^===|^\(base|^--" $OUT/ab.log | tail -6
done
