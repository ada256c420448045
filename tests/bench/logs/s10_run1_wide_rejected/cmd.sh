# Session 10 run 1 (H200): first run of the prepared wide g32 units (code of fb9ba5e).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
compute-sanitizer --tool memcheck --error-exitcode 99 $B/gptq_matmul_test --gtest_filter='GptqGemvFused*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="gemv" GEMV_SHAPES="--group 32;--group 32 --act_order" GEMV_ARGS='--variants warprms:32:0:2:1;warprms:32:0:2:1:1' bash $S
L=gptq-4bit-32g-actorder_True
STAGES="make7b" LAYOUTS=$L bash $S
$B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --ab "--gemv_wide_g32=false;--gemv_wide_g32;--gemv_wide_g32=false;--gemv_wide_g32" > $OUT/ab.log 2>&1
