# Session 9 run 3 (H200 final): defaults now fold on, row gather on, one trip 2, par staging in
# one round trip. old/llama_bench = the same code with the old par staging loop (A/B).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test attention_test cuda_fixture_test small_kernels_test" bash $S
grep -E "folded vs|row gather vs|FAILED" $OUT/unit.log | head -20
STAGES="make7b check7b" bash $S
STAGES="bench service" BENCH_ARGS="--repeat 3" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
mkdir -p /tmp/old && xz -dc .carry/old/llama_bench.xz > /tmp/old/llama_bench && chmod +x /tmp/old/llama_bench
for l in gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l OLD PAR LOOP"; /tmp/old/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only 2>&1 | grep -E "tok/s" | head -3
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048" $OUT/bench.log
