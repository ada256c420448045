# Session 33 run 1 (H200): the split attention kernel's cluster merge with each block's
# partial held in registers (MergeClusterSplitsHeld, cluster_merge.cuh): no shared-memory copy
# of the partial and no block barrier before the push; rank 0 loads every rank's (max, sum)
# and its dim of every P.V at once and merges without a phase per kind of value. Binaries:
# new (the build of this commit), old (LLAMA_ATTN_OLD_MERGE=1: the merge as in ea13752).
# attention_test + long_context_test first (bits against the global merge, RoPE-then-attention
# and the float64 reference), then decode 128 + 256 with --ab "--attn_clock" and 64 tokens at
# 2048 context after its prefill, alternating processes, main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="old"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
for t in attention_test long_context_test; do
  timeout 120 $B/$t > $OUT/t.log 2>&1; echo "$t exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/t.log | head -8 | tr '\n' ' ')"
  cat $OUT/t.log >> $OUT/tests.log
done
rm -f $OUT/t.log
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0"
for v in old new new old; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R --ab "--attn_clock" > $OUT/d.log 2>&1
  echo "== $v: $(grep -E '^\(base\)|^--attn_clock' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
  grep -E 'attention clock|reach the merge' $OUT/d.log | cut -c1-420
  (echo "== $v"; cat $OUT/d.log) >> $OUT/decode.log
done
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
for v in new old new; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R > $OUT/d.log 2>&1
  echo "== $v 2048: $(grep -E 'on-device greedy|decode at' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
  (echo "== $v 2048"; cat $OUT/d.log) >> $OUT/decode.log
done
rm -f $OUT/d.log $OUT/summary.txt
