# Session 12 run 3 (H100, warm after run 2): the two tests run 2 failed, with their fixed
# comparisons (atomics order: tolerances instead of bit equality), 3x; the bench of the three
# layouts run 2's time limit cut off.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
mkdir -p /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
for i in 1 2 3; do
  $B/gptq_matmul_test --gtest_filter='GptqGemvUniformZeros*' >> $OUT/unit.log 2>&1; echo "uniform zeros test $i: exit $?"
  $B/long_context_test >> $OUT/unit.log 2>&1; echo "long_context_test $i: exit $?"
done
grep -E "vs the first path" $OUT/unit.log | awk '{print $2, $NF}' | sort | uniq -c | sort -k3 -n | tail -3
STAGES="make7b bench" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" BENCH_ARGS="--repeat 3" bash $S
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log
