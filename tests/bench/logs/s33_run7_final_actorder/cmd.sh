# Session 33 run 7 (H200): the issue 6 table rows of the act-order layouts on the committed
# code (every warp-GEMV instantiation lets the next kernel launch at its first line: run 6's
# tall binary, whose PTX is the commit's), with the last of the session's device time.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
xz -dc .carry/tall/llama_bench.xz > $B/llama_bench; chmod +x $B/llama_bench
STAGES="make7b" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
STAGES="bench" BENCH_ARGS="--repeat 3" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token|copy bw" $OUT/bench.log
