# Session 29 run 4 (H200), the session's final code (the two review refactors kept: RopeEightWith
# through LoadPairs + RopePairs, StageOneTrip / StageRowGather through StageChunks; sol_bench's
# strided sets; the counter waits removed): the CUDA unit tests, 7B CUDA vs CPU on main
# (StageOneTrip) and 128g (StageRowGather), and the issue 6 table of all four layouts.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="small_kernels_test attention_test gptq_matmul_test cuda_fixture_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -12
STAGES="make7b" bash $S >/dev/null
STAGES="check7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
grep -E "FAILED|PASSED" $OUT/check7b.log | head -5
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token|copy bw" $OUT/bench.log
