# Session 21 run 3 (H200): the new default cluster attention kernel (the grid's zeroing after
# the push by the ranks other than 0; rank 0's merge with each phase's loads at once, also in
# the long-context split kernel's cluster merge). Unit tests of attention and decode; the
# bench of the four layouts (issue 6 table); the attention clock and same-process A/B of
# --attn_way=1 (scores and P.V with 4 rows' loads at once) on main and 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test long_context_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -20
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v -- "--ab"
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --ab "--attn_clock;--attn_clock --attn_way=1" > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; grep -E "^--|^\(base|attention clock" $OUT/attn_clock.log
echo "=== main" >> $OUT/ab.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "--attn_way=1;--attn_way=0;--attn_way=1;--attn_way=0" >> $OUT/ab.log 2>&1
echo "ab main exit $?"
echo "=== 32g" >> $OUT/ab.log
timeout 80 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "--attn_way=1;--attn_way=0;--attn_way=1" >> $OUT/ab.log 2>&1
echo "ab 32g exit $?"
grep -E "^=== |^A/B|^\(base|^--attn" $OUT/ab.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b|bench"
