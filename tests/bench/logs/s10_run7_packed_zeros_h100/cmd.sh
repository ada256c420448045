# Session 10 run 7 (H100): 4-bit zero points in the warp GEMV (CudaOptions::gemv_packed_zeros)
# first run: tests, memcheck, decode A/B on every layout.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures $B/cuda_fixture_test --gtest_filter='*PackedZeros*:*GroupSlots*:*Persistent*' > $OUT/fixture.log 2>&1
echo "fixture exit $?"; grep -E "packed zeros vs|FAILED|PASSED" $OUT/fixture.log
compute-sanitizer --tool memcheck --error-exitcode 99 $B/gptq_matmul_test --gtest_filter='GptqGemvFused*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b" bash $S
for L in gptq-4bit-32g-actorder_True main gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $L"
  $B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --ab "--gemv_packed_zeros=false;--gemv_packed_zeros;--gemv_packed_zeros=false;--gemv_packed_zeros" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
grep -E "FAILED|PASSED" $OUT/unit.log | tail -3
cat $OUT/ab.log
