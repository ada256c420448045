# Session 30 run 3 (H200), the session's final code (no default changed this session: o_proj's
# own K units of session 29 are the newest; run 2 ran every CUDA test and 7B CUDA vs CPU on it):
# the issue 6 table of all four layouts and main's per-kernel timeline at 128 and 2048 context
# after 1 s idle (the first with o_proj at 256 blocks).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" bash $S >/dev/null
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|the same|prefill tok/s|first token|copy bw" $OUT/bench.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 2048 --long_new 64 --repeat 1 \
  --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline.log 2>&1; echo "timeline exit $?"
grep -E "context .*recording|step:" $OUT/timeline.log | cut -c1-150
