# Session 15 run 2: o_proj inside the cluster attention kernel (CudaOptions::attention_oproj,
# kernels/attention_oproj.cuh): its kernel test (+ memcheck), 7B CUDA vs CPU with it, then
# decode A/B and the CUPTI timeline on `main`.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
$B/attention_test > $OUT/unit.log 2>&1; echo "attention_test exit $?" | tee -a $OUT/unit.log
grep -E "OK \]|FAILED|rel|Failure" $OUT/unit.log | head -30
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='*OProj*' > $OUT/sanitizer.log 2>&1
echo "memcheck exit $? $(grep 'ERROR SUMMARY' $OUT/sanitizer.log | tail -1)"
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
M=/tmp/llama_gpu/7b
LLAMA_SYNTHETIC_7B_DIR=$M/main timeout 200 $B/synthetic_7b_test --gtest_filter='*CudaMatchesCpu*' > $OUT/check7b.log 2>&1
echo "check7b exit $?"; grep -E "prefill|decode step|agreed|OK|FAILED|Failure" $OUT/check7b.log | grep -v persistent | head -30
timeout 150 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false --timeline 32 \
  --ab "--attention_oproj" > $OUT/timeline_main.log 2>&1
echo "timeline exit $?"; cat $OUT/timeline_main.log
timeout 150 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false \
  --ab "--attention_oproj;--attention_oproj=false;--attention_oproj" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; cat $OUT/ab_main.log
