# Session 16 run 2: the warp GEMV with 8 loads per set at up to 2 blocks per SM
# (GemvTuning::warp_loads, llama_bench --gemv_warp_loads): kernel tests, decode A/B on main
# and 32g (alternating), timeline.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
for t in gptq_matmul_test; do
  $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
grep -E "Failure|FAILED|Value of|Expected|Which is|trace" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
timeout 250 $B/llama_bench --model $M/main $A --ab "--gemv_warp_loads=8;--gemv_warp_loads=4;--gemv_warp_loads=8;--gemv_warp_loads=8 --gemv_warp_target_blocks=343" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A6 "^A/B set" $OUT/ab_main.log
timeout 150 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--gemv_warp_loads=8;--gemv_warp_loads=4" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A4 "^A/B set" $OUT/ab_32g.log
timeout 120 $B/llama_bench --model $M/main $A --long_context 0 --timeline 32 --ab "--gemv_warp_loads=8" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:" $OUT/timeline.log
