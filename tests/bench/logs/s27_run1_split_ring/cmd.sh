# Session 27 run 1 (H200): the long-context split attention kernel with its cached K/V rows
# through a ring of shared-memory stages (one cp.async.bulk per row's K and V, the first
# stages before the PDL wait; CudaOptions::attn_long_ring_stages / _rows) instead of
# registers. Correctness (attention_test: ring 8 rows = the registers' bits, ring 4 rows vs
# the references; long_context_test vs CPU; the option's validation), then same-process
# A/B at 128 and 2048 context on main and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -20
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 120 $B/cuda_fixture_test --gtest_filter='*SpeedKnobs*' > $OUT/fixture.log 2>&1; echo "fixture exit $?"
grep -E "FAILED|PASSED" $OUT/fixture.log | head
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128"
AB="--attn_long_ring_stages=2 --attn_long_ring_rows=8;--attn_long_ring_stages=3 --attn_long_ring_rows=4;--attn_long_ring_stages=4 --attn_long_ring_rows=4;--attn_long_ring_stages=2 --attn_long_ring_rows=4;--attn_long_ring_stages=0;--attn_long_ring_stages=3 --attn_long_ring_rows=8"
echo "=== main" >> $OUT/ab.log
timeout 240 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab main exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log
AB="--attn_long_ring_stages=3 --attn_long_ring_rows=4;--attn_long_ring_stages=0;--attn_long_ring_stages=2 --attn_long_ring_rows=8;--attn_long_ring_stages=0"
echo "=== 128g" >> $OUT/ab.log
timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab 128g exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log | tail -6
