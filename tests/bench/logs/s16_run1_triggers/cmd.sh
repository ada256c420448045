# Session 16 run 1: where decode attention (and the embedding) let the next kernel start
# (llama_bench --attn_trigger / --embed_trigger, kernels::TriggerPoints): unit tests, decode
# A/B on main and 32g, the timeline of the best, and session 15's every-block attention clock.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
for t in attention_test long_context_test small_kernels_test; do
  $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
timeout 300 $B/llama_bench --model $M/main $A --ab "--attn_trigger=3;--attn_trigger=2;--attn_trigger=1;--attn_trigger=4;--embed_trigger=1;--attn_trigger=3 --embed_trigger=1;--attn_trigger=0" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A12 "^A/B set" $OUT/ab_main.log
timeout 200 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--attn_trigger=3;--attn_trigger=2;--attn_trigger=0" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A6 "^A/B set" $OUT/ab_32g.log
timeout 120 $B/llama_bench --model $M/main $A --long_context 0 --timeline 32 --ab "--attn_trigger=3;--attn_trigger=2" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:" $OUT/timeline.log
timeout 100 $B/llama_bench --model $M/main $A --long_context 0 --attn_clock --ab "--attn_clock --attn_trigger=3" > $OUT/clock.log 2>&1
echo "clock exit $?"; grep -v "^\[" $OUT/clock.log | tail -60
