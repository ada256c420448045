# Session 25 run 3 (H200), final code of session 25 (the split-align option removed; llama_bench
# prints the 2048-context decode figure also after 1 s idle, --long_idle_ms). Unit binaries that
# cover the long-context path; the issue 6 table: bench of all four layouts.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="long_context_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" bash $S >/dev/null
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token" $OUT/bench.log
