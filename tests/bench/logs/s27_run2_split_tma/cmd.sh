# Session 27 run 2 (H200): run 1's ring (one cp.async.bulk per 256-byte row: 317-495 tok/s at
# 2048 context against 602-609) rebuilt on TMA tensor copies: a stage's K and V each one
# cp.async.bulk.tensor.3d box (a map of the cache: dims, kv heads, slot rows). Correctness,
# then the same-process A/B at 128 and 2048 context on main and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -20
cp $OUT/unit.log $OUT/unit_attention.log
STAGES="unit" UNIT_TESTS="cuda_fixture_test" GTEST_FILTER='*SpeedKnobs*' bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -8
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128"
AB="--attn_long_ring_stages=2 --attn_long_ring_rows=4;--attn_long_ring_stages=3 --attn_long_ring_rows=4;--attn_long_ring_stages=0;--attn_long_ring_stages=4 --attn_long_ring_rows=4;--attn_long_ring_stages=2 --attn_long_ring_rows=8;--attn_long_ring_stages=0;--attn_long_ring_stages=3 --attn_long_ring_rows=8"
echo "=== main" >> $OUT/ab.log
timeout 240 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab main exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log
AB="--attn_long_ring_stages=3 --attn_long_ring_rows=4;--attn_long_ring_stages=0;--attn_long_ring_stages=2 --attn_long_ring_rows=8;--attn_long_ring_stages=0"
echo "=== 128g" >> $OUT/ab.log
timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab 128g exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log | tail -6
