# Session 25 run 4 (after s25_final_checks) (H200), code d59333a: the per-kernel timeline of main and 128g at 128 and
# 2048 context with 1 s idle between each prefill and the recorded decode (--decode_gap_ms),
# i.e. outside the power cap's aftermath that session 24's 2048-context timeline recorded.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/timeline.log
  timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 2048 --long_new 64 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 >> $OUT/timeline.log 2>&1
  echo "timeline $l exit $?"
done
grep -E "^===|context .*recording|Kernel|step:" $OUT/timeline.log | cut -c1-150
