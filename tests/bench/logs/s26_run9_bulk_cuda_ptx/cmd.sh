# Session 26 run 9 (H200), review: sol_bench's TMA ring through cuda::ptx (as cluster_merge.cuh)
# instead of hand-written asm: ReadStreamTest, and the ring figures of runs 2 and 6 again.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 100 $B/sol_bench --repeat 30 --spread_layer -1 --configs "3:4:1:1;2:4:1:1:0:2x8;3:4:1:1:0:4x2;3:4:1:1:0:2x4;2:4:1:1:0:2x4" > $OUT/sol.log 2>&1; echo "sol exit $?"
grep chain $OUT/sol.log
