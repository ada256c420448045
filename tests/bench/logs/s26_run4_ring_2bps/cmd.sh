# Session 26 run 4 (H200): the TMA weight ring at 2 blocks per SM (8 KB a warp: 2 x 8 or
# 4 x 4 blocks, as sol_bench's best read-only chain, 2:2x8) with K units aimed at 264 blocks,
# against the registers with and without that target (main, same process); then the
# timeline of main with the 2 x 4 ring of run 3 (where its 19% went).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--gemv_ring_stages=2 --gemv_ring_kb=8 --gemv_warp_target_blocks=264;--gemv_ring_stages=0;--gemv_ring_stages=4 --gemv_warp_target_blocks=264;--gemv_ring_stages=0 --gemv_warp_target_blocks=264;--gemv_ring_stages=2 --gemv_ring_kb=8 --gemv_warp_target_blocks=264"
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" > $OUT/ab.log 2>&1; echo "ab exit $?"
grep -E "^\(base|^--" $OUT/ab.log
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --repeat 1 --timeline 16 --gemv_ring_stages=2 > $OUT/timeline_ring.log 2>&1; echo "timeline exit $?"
grep -B2 -A30 "adds" $OUT/timeline_ring.log | head -60
