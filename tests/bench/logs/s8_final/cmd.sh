# Session 8 run 3 (final): one-trip GEMV input (template kernels), RoPE angles before the wait.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test attention_test cuda_fixture_test small_kernels_test" bash $S
STAGES="make7b check7b" LAYOUTS="main" bash $S
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S
BIN=/tmp/llama_gpu/bin
mkdir -p /tmp/old && xz -dc .carry/old/llama_bench.xz > /tmp/old/llama_bench && chmod +x /tmp/old/llama_bench
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for l in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l OLD (67f3930)"; /tmp/old/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only 2>&1 | grep -E "tok/s" | head -3
  echo "=== $l NEW --ab"; $BIN/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "--gemv_one_trip_input=0;--gemv_one_trip_input=2" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
grep -E "decode tok|prefill tok|TTFT|at 2048" $OUT/bench.log
