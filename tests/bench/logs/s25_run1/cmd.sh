# Session 25 run 1 (H200), code c88d030. The three CUDA unit binaries that test the prepared
# long-context split alignment (attn_long_split_align: long_context_test's 16 x 136-key path,
# cuda_fixture_test's validation, attention_test); same-process A/B of --attn_long_splits=16
# --attn_long_split_align=8 against the default (64) at 2048 context on main, 128g, 32g;
# timeline of main at 2048 context with and without attention (--skip_ops=2) to see whether
# the GEMVs' extra time at long context comes from attention's K/V traffic.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="long_context_test cuda_fixture_test attention_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
N="--attn_long_splits=16 --attn_long_split_align=8"
AB="$N;--attn_long_split_align=64;$N;--attn_long_split_align=64"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
for s in 0 2; do
  echo "=== main skip_ops=$s" >> $OUT/timeline.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 32 --repeat 1 --prefill_fp16_weights=false --skip_ops=$s --timeline 32 >> $OUT/timeline.log 2>&1
  echo "timeline skip $s exit $?"
done
grep -E "^===|context|Attention|step:" $OUT/timeline.log | cut -c1-150
