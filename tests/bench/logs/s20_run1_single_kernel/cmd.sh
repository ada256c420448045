# Session 20 run 1 (H200): the service stage (llamad --backend=cuda end to end, not run since
# session 16); the one-GEMV-kernel experiment (session 19, off): its tests, then a same-process
# A/B on 32g, 128g and main, and the per-kernel timeline of 32g both ways; rank 0's merge
# phases (--attn_clock, clock slots 16-19) on main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="service" bash $S >/dev/null 2>&1
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
grep -E "FAILED" $OUT/unit.log | head -10
AB="--gemv_single_kernel;--gemv_single_kernel=false;--gemv_single_kernel;--gemv_single_kernel=false"
for l in gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True main; do
  timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 3 --prefill_fp16_weights=false --ab "$AB" > $OUT/ab_$l.log 2>&1
  echo "ab $l exit $?"; grep -E "tok/s" $OUT/ab_$l.log | tail -12
done
for f in "--gemv_single_kernel" "--gemv_single_kernel=false"; do
  timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 $f > "$OUT/timeline_32g_${f#--}.log" 2>&1
  echo "timeline $f exit $?"; tail -14 "$OUT/timeline_32g_${f#--}.log"
done
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --attn_clock > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; tail -30 $OUT/attn_clock.log
cat $OUT/summary.txt
