# Session 11 run 7 (H200): attn_long_splits (about N splits of 64-key multiples past 1024
# keys): long_context_test (new), attention_test, cuda_fixture_test; A/B of N at 2048 and
# 4096 context on main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="long_context_test attention_test cuda_fixture_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED|1100 and 1400" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main" bash $S
L=/tmp/llama_gpu/7b/main
{ echo "=== main 2048"
$B/llama_bench --model $L --backend cuda --repeat 3 --decode_only --new_tokens 64 --ab "--attn_long_splits=12;--attn_long_splits=9;--attn_long_splits=16;--attn_long_splits=12;--attn_long_splits=9;--attn_long_splits=16" 2>&1 | sed -n '/^A\/B set/,$p'
echo "=== main 4096"
$B/llama_bench --model $L --backend cuda --repeat 3 --decode_only --new_tokens 64 --long_context 4096 --ab "--attn_long_splits=12;--attn_long_splits=0;--attn_long_splits=20;--attn_long_splits=12" 2>&1 | sed -n '/^A\/B set/,$p'
} > $OUT/ab.log 2>&1
cat $OUT/ab.log
