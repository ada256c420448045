# Session 15 run 6: every CUDA unit test on the final code (693bd92: the attention clock's
# instantiation added, o_proj-in-attention removed; the default kernels' PTX bodies as in
# session 14), and one decode figure with the timeline.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit make7b" LAYOUTS="main" bash $S
timeout 90 /tmp/llama_gpu/bin/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --repeat 3 \
  --prefill_fp16_weights=false --timeline 32 > $OUT/timeline.log 2>&1
echo "timeline exit $?"; cat $OUT/timeline.log
