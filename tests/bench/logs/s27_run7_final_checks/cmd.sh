# Session 27 run 7 (H200), code 51d09db (the split attention kernel the decode default):
# 7B CUDA vs CPU on main (synthetic_7b_test: the default path, the persistent kernel and
# now the cluster kernel as alternatives), then 128g's bench with the defaults.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
STAGES="check7b" LAYOUTS="main" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
grep -E "FAILED|PASSED|cluster attention kernel, decode step 7" $OUT/check7b.log | head -5
timeout 110 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True --repeat 3 > $OUT/bench_128g.log 2>&1; echo "bench exit $?"
grep -E "tok/s|TTFT|first token" $OUT/bench_128g.log | head -12
