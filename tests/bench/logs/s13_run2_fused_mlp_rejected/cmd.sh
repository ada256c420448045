# Session 13 run 2: gate|up and down in one launch (CudaOptions::gemv_fused_mlp, off by default):
# its tests (kernel vs two launches and a host MLP, memcheck; fixture decode), the relocated
# CudaErrorsTest, long_context_test replayed at the seed that failed in run 1 and twice fresh,
# then the engine A/B on main and 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test cuda_errors_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
B=/tmp/llama_gpu/bin
for seed in 1943055097 "" ""; do
  LLAMA_TEST_SEED=$seed $B/long_context_test --gtest_filter='*fp32*:*main*' >>$OUT/long.log 2>&1
  echo "long_context_test seed '$seed': exit $?" | tee -a $OUT/summary.txt
done
compute-sanitizer --tool memcheck --error-exitcode 99 $B/gptq_matmul_test --gtest_filter='GptqMlp*' >$OUT/sanitizer.log 2>&1
echo "memcheck GptqMlp*: exit $? $(grep 'ERROR SUMMARY' $OUT/sanitizer.log | tail -1)" | tee -a $OUT/summary.txt
R="--gemv_fused_mlp=false;--gemv_fused_mlp;--gemv_fused_mlp=false;--gemv_fused_mlp"
STAGES="make7b abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="$R" bash $S
STAGES="make7b abx" LAYOUTS=gptq-4bit-32g-actorder_True BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="$R" bash $S
grep -E "FAILED|Failure" -A3 $OUT/unit.log | head -30
grep -h "max abs" $OUT/long.log | head -8
grep -h "one launch vs two\|GptqMlp" $OUT/unit.log | head -12
