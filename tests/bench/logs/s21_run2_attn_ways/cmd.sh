# Session 21 run 2 (H200): variants of the cluster attention kernel (--attn_way bits: 1 the
# grid's zeroing after the push, by the ranks other than 0; 2 rank 0's merge with each phase's
# loads at once; 4 256 threads a block). attention_test (every way against the default);
# the attention clock for ways 0, 3, 7 (main); same-process A/B on main and 32g (short context).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S >/dev/null
grep -E "FAILED|PASSED|Failure|way" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 80 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --ab "--attn_clock;--attn_clock --attn_way=3;--attn_clock --attn_way=7" > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; grep -E "^--|^\(base|attention clock" $OUT/attn_clock.log
echo "=== main" >> $OUT/ab.log
timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "--attn_way=1;--attn_way=2;--attn_way=3;--attn_way=4;--attn_way=7;--attn_way=0;--attn_way=3;--attn_way=7;--attn_way=0" >> $OUT/ab.log 2>&1
echo "ab main exit $?"
echo "=== 32g" >> $OUT/ab.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "--attn_way=3;--attn_way=7;--attn_way=0;--attn_way=3" >> $OUT/ab.log 2>&1
echo "ab 32g exit $?"
grep -E "^=== |^A/B|^\(base|^--attn" $OUT/ab.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
