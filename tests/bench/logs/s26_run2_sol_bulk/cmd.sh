# Session 26 run 2 (H200): sol_bench's read-only chain streamed through a per-warp TMA ring in
# shared memory (config field 6: stages x lines), against the static register runs (3:4 is
# the warp GEMV's geometry); small_kernels_test (ReadStreamTest with the rings).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -10
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
C="3:4:1:1;4:4:1:1;1:4:1:1:0:4x4;1:4:1:1:0:8x4;1:4:1:1:0:4x8;2:4:1:1:0:2x4;2:4:1:1:0:4x4;2:4:1:1:0:2x8;2:4:1:1:0:8x2;3:4:1:1:0:2x4;3:4:1:1:0:4x2;4:4:1:1:0:2x4;4:4:1:1:0:4x2;2:4:0:1:0:4x4"
timeout 200 $B/sol_bench --configs "$C" > $OUT/sol.log 2>&1; echo "sol exit $?"
timeout 100 $B/sol_bench --group 32 --spread_layer -1 --configs "3:4:1:1;1:4:1:1:0:4x4;2:4:1:1:0:4x4;2:4:1:1:0:2x8" > $OUT/sol_g32.log 2>&1; echo "sol32 exit $?"
cat $OUT/sol.log $OUT/sol_g32.log
