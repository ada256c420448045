# Session 21 run 1 (H200): does rank 0's merge run from a cold instruction cache? With
# --attn_warm_merge rank 0 rehearses its merge (same code, no stores) while the other ranks'
# partials land. attention_test (bits equal with and without); rank 0's merge phases with and
# without (--attn_clock, main); same-process A/B on main and 32g (short context).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S >/dev/null
grep -E "FAILED|PASSED" $OUT/unit.log | head -10
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --ab "--attn_clock;--attn_clock --attn_warm_merge;--attn_clock;--attn_clock --attn_warm_merge" > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; grep -E "^--|^\(base|attention clock" $OUT/attn_clock.log
AB="--attn_warm_merge;--attn_warm_merge=false;--attn_warm_merge;--attn_warm_merge=false;--attn_warm_merge"
for l in main gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^=== |^A/B|^\(base|^--attn" $OUT/ab.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
