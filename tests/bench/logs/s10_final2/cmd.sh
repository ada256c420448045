# Session 10 run 8 (H200 final, code of 3d0f15e: group slots and packed zeros on): CUDA unit
# tests, the 7B check of 32g, packed-zeros A/B on 32g and main, full bench, service stage.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test attention_test small_kernels_test" bash $S
STAGES="make7b check7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
STAGES="make7b bench service" BENCH_ARGS="--repeat 3" bash $S
for L in gptq-4bit-32g-actorder_True main; do
  echo "=== $L"
  $B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --ab "--gemv_packed_zeros=false;--gemv_packed_zeros;--gemv_packed_zeros=false;--gemv_packed_zeros" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048|copy" $OUT/bench.log
cat $OUT/ab.log
grep -E "unit|7b|service" $OUT/summary.txt
