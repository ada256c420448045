# Session 26 run 1 (H200): sol_bench's read-only chain with work stealing (config field 5:
# chunk lines taken from a counter) against the static runs, and every warp's release / end
# times of one layer's kernels (--spread_layer 16); small_kernels_test (ReadStreamTest).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -10
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
C="2:4:1:1;2:4:1:1:4;2:4:1:1:8;2:4:1:1:16;3:4:1:1;3:4:1:1:4;3:4:1:1:8;3:4:1:1:16;2:8:1:1;2:8:1:1:8;2:8:1:1:16;4:4:1:1;4:4:1:1:8;2:4:1:0;2:4:1:0:8"
timeout 200 $B/sol_bench --configs "$C" > $OUT/sol.log 2>&1; echo "sol exit $?"
timeout 100 $B/sol_bench --group 32 --configs "3:4:1:1;3:4:1:1:8;2:8:1:1;2:8:1:1:8" --spread_layer -1 > $OUT/sol_g32.log 2>&1; echo "sol32 exit $?"
cat $OUT/sol.log $OUT/sol_g32.log
