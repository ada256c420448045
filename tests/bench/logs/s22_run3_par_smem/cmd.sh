# Session 22 run 3 (H200): the warp GEMV's group parameters sized by the group size and packed
# in 8 bytes for every G with group slots (static shared memory per block: g128 45.9 -> 21.3 KB,
# g64 45.9 -> 29.5 KB, g32 45.9 KB as before), so that the L1 / shared split leaves L1 more
# (run 2: less L1 slowed every streaming kernel). Tests first; then A/B in one process against
# the same kernels with the old footprint restored as unused dynamic shared memory
# (--gemv_extra_smem: 24576 bytes for g128, 16384 for g64).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "--gemv_extra_smem=24576;--gemv_extra_smem=0;--gemv_extra_smem=24576" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -E "^\(base|^--" $OUT/ab_main.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True $R --ab "--gemv_extra_smem=24576;--gemv_extra_smem=0" > $OUT/ab_128g.log 2>&1
echo "ab 128g exit $?"; grep -E "^\(base|^--" $OUT/ab_128g.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-64g-actorder_True $R --ab "--gemv_extra_smem=16384;--gemv_extra_smem=0" > $OUT/ab_64g.log 2>&1
echo "ab 64g exit $?"; grep -E "^\(base|^--" $OUT/ab_64g.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 > $OUT/timeline_main.log 2>&1
echo "timeline exit $?"; grep -E "Kernel|step:" $OUT/timeline_main.log
