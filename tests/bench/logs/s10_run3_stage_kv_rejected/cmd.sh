# Session 10 run 3 (H200): tests with group slots on by default; staged K/V for the unfused
# decode attention (CudaOptions::attn_stage_kv) first run, A/B at 2048 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test gptq_matmul_test cuda_fixture_test small_kernels_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "staged K/V|group slots vs|FAILED" $OUT/unit.log | head -20
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='DecodeAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b check7b" bash $S
for L in main gptq-4bit-128g-actorder_True; do
  echo "=== $L"
  $B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --ab "--attn_stage_kv=false;--attn_stage_kv;--attn_stage_kv=false;--attn_stage_kv" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
tail -12 $OUT/summary.txt
