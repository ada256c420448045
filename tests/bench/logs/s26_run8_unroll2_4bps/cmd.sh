# Session 26 run 8 (H200): the warp GEMV with 2 loads per lane in flight (kUnroll 2) and
# 4 blocks per SM (__launch_bounds__(256, 4): 62-64 registers, no spills), a second
# llama_bench built from HEAD + unroll2_4bps.patch (.carry/ku2), against the default binary,
# alternating processes (main), with K units aimed at the default ~2.6 blocks per SM, 396
# and 528; sol_bench's read-only floor for 4:2 and 3:2 beside 3:4 / 4:4.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
xz -dc .carry/ku2/llama_bench_ku2.xz > /tmp/llama_bench_ku2 && chmod +x /tmp/llama_bench_ku2
timeout 60 $B/sol_bench --repeat 30 --spread_layer -1 --configs "3:4:1:1;4:2:1:1;3:2:1:1;4:4:1:1" > $OUT/sol.log 2>&1; echo "sol exit $?"
grep chain $OUT/sol.log
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
M=/tmp/llama_gpu/7b/main
for i in 1 2; do
  echo "=== base $i" >> $OUT/ab.log; timeout 60 $B/llama_bench --model $M $R >> $OUT/ab.log 2>&1; echo "base $i exit $?"
  echo "=== ku2 $i" >> $OUT/ab.log
  timeout 100 /tmp/llama_bench_ku2 --model $M $R --ab "--gemv_warp_target_blocks=528;--gemv_warp_target_blocks=396" >> $OUT/ab.log 2>&1; echo "ku2 $i exit $?"
done
M=/tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True
echo "=== base 128g" >> $OUT/ab.log; timeout 60 $B/llama_bench --model $M $R >> $OUT/ab.log 2>&1
echo "=== ku2 128g" >> $OUT/ab.log; timeout 60 /tmp/llama_bench_ku2 --model $M $R >> $OUT/ab.log 2>&1
grep -E "^===|^decode tok/s|^\(base|^--" $OUT/ab.log
