# Session 19 run 1: the cluster merge with the partials pushed (st.async into rank 0's shared
# memory, rank 0 waits on an mbarrier, the others exit; llama_bench --attn_merge=1,
# kernels::SetAttentionMerge) against the default pull between two cluster barriers.
# Unit tests (both modes, same bits), memcheck and racecheck on the fused kernels, the clock,
# A/B on main / 32g / 128g (short and 2048 context), the timeline.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
date -u +%T; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for t in attention_test long_context_test; do
  $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
F='RopeDecodeAttention*:RopeSplitAttention*'
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter="$F" > $OUT/memcheck.log 2>&1
echo "memcheck exit $? $(grep -E 'ERROR SUMMARY' $OUT/memcheck.log | tail -1)"
timeout 120 compute-sanitizer --tool racecheck --error-exitcode 99 $B/attention_test --gtest_filter="$F" > $OUT/racecheck.log 2>&1
echo "racecheck exit $? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' $OUT/racecheck.log | tail -1)"
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
date -u +%T
timeout 100 $B/llama_bench --model $M/main $A --long_context 0 --attn_clock --ab "--attn_clock --attn_merge=1" > $OUT/clock.log 2>&1
echo "clock exit $?"; grep -v "^\[" $OUT/clock.log | grep -A12 "^A/B set"
date -u +%T
timeout 200 $B/llama_bench --model $M/main $A --ab "--attn_merge=1;--attn_merge=0;--attn_merge=1;--attn_merge=0" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A6 "^A/B set" $OUT/ab_main.log
date -u +%T
timeout 120 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--attn_merge=1;--attn_merge=0" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A4 "^A/B set" $OUT/ab_32g.log
timeout 120 $B/llama_bench --model $M/gptq-4bit-128g-actorder_True $A --ab "--attn_merge=1;--attn_merge=0" > $OUT/ab_128g.log 2>&1
echo "ab 128g exit $?"; grep -A4 "^A/B set" $OUT/ab_128g.log
date -u +%T
timeout 120 $B/llama_bench --model $M/main $A --timeline 32 --ab "--attn_merge=1" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:" $OUT/timeline.log | head -40
date -u +%T
