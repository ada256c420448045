# Session 32 run 4 (H200): on run 3's kernel (head dimension fixed, vector loads), two more
# variants of the split attention kernel (variants.diff, build macros, never committed):
# zl (LLAMA_ATTN_ZERO_LATE=1): the grid's zeroing after the partial's push by every rank but 0
# instead of right after the PDL wait (its phase grew to 800-980 cycles in run 3);
# mb3 (LLAMA_ATTN_MIN_BLOCKS=3): compiled for 3 blocks per SM (168 registers, no spill)
# instead of 4 (128 registers, 16 bytes of spill). Decode 128 + 256, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="zl mb3"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for v in new zl mb3 new zl mb3; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R > $OUT/d.log 2>&1
  echo "== $v: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ')"
  (echo "== $v"; cat $OUT/d.log) >> $OUT/decode.log
done
rm -f $OUT/d.log $OUT/summary.txt
