# Session 29 run 2 (H200): sol_bench's read-only chain with strided sets (fifth field "s":
# warp w of W reads sets w, w + W, ... so that the grid reads one contiguous span at a time)
# against each warp's contiguous run, after small_kernels_test; and the two review refactors
# (rope_refactor.patch: RopeEightWith = LoadPairs + RopePairs; stage_refactor.patch:
# StageOneTrip / StageRowGather share StageChunks), each in its own llama_bench built from
# HEAD + the patch (.carry/alt_rope, .carry/alt_stage), alternating processes with the
# default binary on main, decode at 128 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -8
C="3:4:1:1;3:4:1:1:s;4:4:1:1;4:4:1:1:s;2:8:1:1;2:8:1:1:s;3:2:1:1;3:2:1:1:s"
timeout 200 $B/sol_bench --repeat 30 --spread_layer 16 --configs "$C" > $OUT/sol_1.log 2>&1; echo "sol exit $?"
timeout 200 $B/sol_bench --repeat 30 --spread_layer -1 --configs "$C" > $OUT/sol_2.log 2>&1; echo "sol exit $?"
grep -E "chain|layer |flat|phases" $OUT/sol_1.log $OUT/sol_2.log | cut -c1-120
for a in rope stage; do xz -dc .carry/alt_$a/llama_bench.xz > /tmp/lb_$a && chmod +x /tmp/lb_$a; done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
M=/tmp/llama_gpu/7b/main
for i in 1 2; do
  for b in base rope stage; do
    X=$B/llama_bench; [ $b != base ] && X=/tmp/lb_$b
    echo "=== $b $i" >> $OUT/ab.log; timeout 60 $X --model $M $R >> $OUT/ab.log 2>&1; echo "$b $i exit $?"
  done
done
grep -E "^===|^decode tok/s" $OUT/ab.log
