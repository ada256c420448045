# Session 29 run 1 (H200): session 28's prepared counter-wait boundaries in sol_bench's
# read-only chain (config wait field 2) against the PDL wait (1), same process, after
# small_kernels_test (ReadStreamTest's counted chain).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -8
for r in 1 2; do
timeout 200 $B/sol_bench --repeat 30 --spread_layer 16 \
  --configs "3:4:1:1;3:4:1:2;2:4:1:1;2:4:1:2;4:4:1:1;4:4:1:2" > $OUT/sol_$r.log 2>&1; echo "sol exit $?"
done
cat $OUT/sol_1.log | head -120
grep -vE "^ *warp|^ +[0-9]" $OUT/sol_2.log | head -60
