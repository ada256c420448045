# Session 25 run 2 (H200), code c88d030 without the split-align option (it lost in run 1) +
# llama_bench --decode_gap_ms (diagnosis) and the timeline's per-step times in order.
# Question: run 1 showed the GEMVs ~5% slower at 2048 context even with attention left out
# (--skip_ops=2), so not K/V traffic. Is it the GPU's state right after a 2048-token prefill
# (which runs at the power cap)? Timelines of main at 2048 context with 0 and 1000 ms idle
# between prefill and decode (nvidia-smi sampled every 20 ms during the first), then the
# same-process A/B of the gap on main and 128g (decode figures at 128 and 2048 context).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
T="--decode_only --long_context 2048 --long_new 128 --repeat 1 --prefill_fp16_weights=false --timeline 96"
for g in 0 1000; do
  echo "=== main gap=$g" >> $OUT/timeline.log
  [ $g = 0 ] && { nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,temperature.memory,clocks_event_reasons.active --format=csv -lms 20 > $OUT/smi.log 2>&1 & SMI=$!; }
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main $T --decode_gap_ms=$g >> $OUT/timeline.log 2>&1
  echo "timeline gap $g exit $?"
  [ $g = 0 ] && kill $SMI
done
grep -E "^===|decode tok|context .*recording|step:|steps in order" $OUT/timeline.log | cut -c1-700
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128"
AB="--decode_gap_ms=1000;--decode_gap_ms=0;--decode_gap_ms=1000;--decode_gap_ms=0"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 200 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
