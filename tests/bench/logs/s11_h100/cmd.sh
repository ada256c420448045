# Session 11 H100 run (code of ccbc708): CUDA unit tests, 7B CUDA vs CPU on main, the full
# bench of the 4 layouts, and the cluster merge of the split attention kernel A/B on 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test attention_test cuda_fixture_test long_context_test" bash $S
STAGES="make7b check7b" LAYOUTS="main" bash $S
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
$B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True --backend cuda --repeat 3 --decode_only --new_tokens 64 --ab "--split_attention_cluster=false;--split_attention_cluster;--split_attention_cluster=false;--split_attention_cluster" 2>&1 | sed -n '/^A\/B set/,$p' > $OUT/ab.log 2>&1
grep -E "^=== |decode tok|prefill tok|TTFT|time to first|at 2048|copy" $OUT/bench.log
grep -E "unit|7b" $OUT/summary.txt
cat $OUT/ab.log
