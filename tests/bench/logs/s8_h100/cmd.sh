# Session 8 run 4: the H100, same binaries as s8_final.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S
STAGES="make7b" bash $S > /dev/null
BIN=/tmp/llama_gpu/bin
mkdir -p /tmp/old && xz -dc .carry/old/llama_bench.xz > /tmp/old/llama_bench && chmod +x /tmp/old/llama_bench
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for l in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l OLD (67f3930)"; /tmp/old/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only 2>&1 | grep -E "tok/s" | head -3
  echo "=== $l NEW"; $BIN/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only 2>&1 | grep -E "copy bw|tok/s" | head -4
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
