# Session 21 run 5 (H200, the session's last ~4.5 device minutes): the new key in a split of
# its own (--attn_new_key_alone; the new key's split was last to the merge in 20 of 32 heads).
# Same-process A/B on main first, then attention_test and cuda_fixture_test.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 75 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 2 --prefill_fp16_weights=false --ab "--attn_new_key_alone;--attn_new_key_alone=false;--attn_new_key_alone;--attn_new_key_alone=false" > $OUT/ab.log 2>&1
echo "ab exit $?"; grep -E "^A/B|^\(base|^--attn" $OUT/ab.log
STAGES="unit" UNIT_TESTS="attention_test cuda_fixture_test" timeout 60 bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
