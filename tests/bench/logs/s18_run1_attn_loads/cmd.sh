# Session 18 run 1: how decode attention loads q and the new key after its PDL wait
# (llama_bench --attn_loads, kernels::SetAttentionLoads: 0 q then the new key (default),
# 1 together after the zeroing, 2 together before it), session 16's per-split merge clock,
# unit tests with the three modes, A/B on main and 32g, the timeline.
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
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
date -u +%T
timeout 100 $B/llama_bench --model $M/main $A --long_context 0 --attn_clock --ab "--attn_clock --attn_loads=2;--attn_clock --attn_loads=1" > $OUT/clock.log 2>&1
echo "clock exit $?"; grep -v "^\[" $OUT/clock.log | grep -A40 "^A/B set"
date -u +%T
timeout 260 $B/llama_bench --model $M/main $A --ab "--attn_loads=2;--attn_loads=1;--attn_loads=0;--attn_loads=2;--attn_loads=0" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A8 "^A/B set" $OUT/ab_main.log
date -u +%T
timeout 150 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--attn_loads=2;--attn_loads=0" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A5 "^A/B set" $OUT/ab_32g.log
date -u +%T
timeout 120 $B/llama_bench --model $M/main $A --long_context 0 --timeline 32 --ab "--attn_loads=2" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:|attention|rope" $OUT/timeline.log | head -40
date -u +%T
timeout 90 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --long_context 0 --timeline 32 > $OUT/timeline_32g.log 2>&1
echo "timeline 32g exit $?"; grep -E "^\(base\)|Kernel|step:" $OUT/timeline_32g.log | head -20
date -u +%T
