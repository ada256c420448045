# Session 15 run 5: the cluster attention kernel with q / new k / v loaded as 16-byte vectors
# (RopeEightVec, same bits) and the split merge spread over the cluster's blocks
# (MergeClusterSplitsSpread): tests, memcheck, 7B CUDA vs CPU, then decode A/B against the
# build before the change (.carry/llama_bench_before.xz, commit 693bd92), alternating, and
# the attention clock of both.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
xz -dc .carry/llama_bench_before.xz > $B/llama_bench_before && chmod +x $B/llama_bench_before
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
for t in attention_test cuda_fixture_test long_context_test; do
  $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeDecodeAttention*' > $OUT/sanitizer.log 2>&1
echo "memcheck exit $? $(grep 'ERROR SUMMARY' $OUT/sanitizer.log | tail -1)"
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
M=/tmp/llama_gpu/7b
LLAMA_SYNTHETIC_7B_DIR=$M/main timeout 150 $B/synthetic_7b_test --gtest_filter='*CudaMatchesCpu*' > $OUT/check7b.log 2>&1
echo "check7b exit $?"; grep -E "prefill|decode step|agreed|OK \]|FAILED|Failure" $OUT/check7b.log | grep -v "persistent\|split" | head -14
A="--model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for i in 1 2; do
  for b in llama_bench_before llama_bench; do
    echo "== $b" >> $OUT/ab.log; timeout 60 $B/$b $A >> $OUT/ab.log 2>&1
    echo "$b: $(grep 'on-device greedy' $OUT/ab.log | tail -1)"
  done
done
for b in llama_bench_before llama_bench; do
  timeout 60 $B/$b $A --attn_clock --ab "--attn_clock" > $OUT/clock_$b.log 2>&1
  echo "$b clock:"; grep -E "attention clock" $OUT/clock_$b.log
done
