# Session 11 final run (H200, code of ccbc708): every CUDA unit test, 7B CUDA vs CPU on main
# and 32g, the full bench of the 4 layouts, the service stage, ncu per-kernel breakdown of a
# decode step at position 2049 (main).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test" bash $S
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
STAGES="make7b bench service" BENCH_ARGS="--repeat 3" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model /tmp/llama_gpu/7b/main --backend cuda --profile_step --prompt 2048 > /tmp/ncu_long.csv 2>>$OUT/ncu.log
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv > $OUT/ncu_long.txt 2>&1
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048|copy" $OUT/bench.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b|service|llamactl|memcheck" 
cat $OUT/ncu_long.txt
