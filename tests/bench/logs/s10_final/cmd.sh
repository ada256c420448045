# Session 10 run 4 (H200 final, code of 7d32c5d): full bench of every layout, the service
# stage, then per layout the decode figures with group slots off (the session-9 stream) as
# the in-run "before".
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b bench service" BENCH_ARGS="--repeat 3" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
for L in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $L --gemv_group_slots=0"
  $B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --gemv_group_slots=0 2>&1 | grep -E "tok/s"
done > $OUT/ab.log 2>&1
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048|copy" $OUT/bench.log
cat $OUT/ab.log
grep -i "service" $OUT/summary.txt
