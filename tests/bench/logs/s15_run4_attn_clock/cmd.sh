# Session 15 run 4: where the cluster attention kernel's ~6 us go (llama_bench --attn_clock:
# clock64 at 11 points of one block per head, the last launch of a decode run), at 128+256
# and 16+64 tokens; the clocked variant against the plain one (its cost).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
M=/tmp/llama_gpu/7b
timeout 120 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0 \
  --attn_clock --ab "--attn_clock=false;--attn_clock=true" > $OUT/clock.log 2>&1
echo "clock exit $?"; cat $OUT/clock.log
timeout 100 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0 \
  --prompt 16 --new_tokens 64 --attn_clock --ab "--attn_clock=true" > $OUT/clock16.log 2>&1
echo "clock16 exit $?"; cat $OUT/clock16.log
