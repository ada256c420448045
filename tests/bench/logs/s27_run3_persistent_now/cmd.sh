# Session 27 run 3 (H200), code 891c016 (HEAD; run 2's ring removed): where the opt-in
# persistent decode kernel (one cooperative kernel, grid barriers between phases; session 5:
# 488.7 / 416.5 against 650.2 layered) stands against today's layered path, with its phase
# clock, same process, main at 128 context: the base for any megakernel decision.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--persistent_decode;--persistent_decode --persistent_blocks_per_sm=3;--persistent_decode=false;--persistent_decode --phase_clock"
echo "=== main" >> $OUT/ab.log
timeout 300 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab main exit $?"
grep -E "^===|^\(base|^--|phases" $OUT/ab.log
