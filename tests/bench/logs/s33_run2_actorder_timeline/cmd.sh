# Session 33 run 2 (H200): where the act-order layouts lose against main (128g: the same bytes
# as main but 2.6% slower): per-kernel timelines of 128g and 32g at 128 and 2048 context (1 s
# idle), on run 1's new binary (held merge); then run 1's A/B on 64g (old, new alternating).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="old"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True" bash $S >/dev/null
for l in gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True; do
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 2048 --long_new 64 --repeat 1 \
    --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline_$l.log 2>&1; echo "timeline $l exit $?"
  grep -E "context .*recording|Kernel|step:" $OUT/timeline_$l.log | head -13 | cut -c1-150
done
R="--model /tmp/llama_gpu/7b/gptq-4bit-64g-actorder_True --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0"
for v in old new old new; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R > $OUT/d.log 2>&1
  echo "== $v 64g: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
  (echo "== $v 64g"; cat $OUT/d.log) >> $OUT/decode.log
done
rm -f $OUT/d.log $OUT/summary.txt
