# Session 32 run 1 (H200): session 31's prepared clock of the split attention kernel.
# attention_test (RopeSplitAttentionTest runs the clocked variant: same bits, points in
# order), then llama_bench --attn_clock at 128 context (the split kernel, the decode default)
# and at 2048 context, to see where attention's ~5 us a layer at 128 context goes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
$B/attention_test > $OUT/attention_test.log 2>&1
echo "attention_test exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/attention_test.log | head -8 | tr '\n' ' ')"
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 \
  --prefill_fp16_weights=false --ab "--attn_clock" > $OUT/clock128.log 2>&1
echo "clock128 exit $?"; cat $OUT/clock128.log | grep -v '^\s*$' | tail -30
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 64 --repeat 1 \
  --prefill_fp16_weights=false --ab "--attn_clock" > $OUT/clock2048.log 2>&1
echo "clock2048 exit $?"; cat $OUT/clock2048.log | grep -v '^\s*$' | tail -30
