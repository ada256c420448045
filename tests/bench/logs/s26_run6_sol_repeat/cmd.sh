# Session 26 run 6 (H200): sol_bench again, twice, 50 replays each, on the configs that
# matter (the GEMV's 3:4, 4:4, 2:8, and the TMA rings 2:2x8, 3:2x4, 3:4x2, 2:2x4) to see
# which of run 2's differences repeat; small_kernels_test on the final read_stream code.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
C="3:4:1:1;4:4:1:1;2:8:1:1;2:4:1:1:0:2x8;3:4:1:1:0:2x4;3:4:1:1:0:4x2;2:4:1:1:0:2x4;3:4:1:1"
for i in 1 2; do
  timeout 150 $B/sol_bench --repeat 50 --spread_layer -1 --configs "$C" > $OUT/sol_$i.log 2>&1; echo "sol $i exit $?"
done
grep -E "chain|layer |flat" $OUT/sol_1.log $OUT/sol_2.log | sed 's/.*sol_//'
