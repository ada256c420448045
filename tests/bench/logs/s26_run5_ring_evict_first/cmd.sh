# Session 26 run 5 (H200): the TMA weight ring's bulk copies with the L2 evict-first policy
# (as the register stream's __ldcs) and no proxy fence: gptq_matmul_test, then main A/B at
# 3 blocks/SM (2 x 4) and 2 blocks/SM (2 x 8, units aimed at 264 blocks) against the registers,
# and the timeline of the 2 x 4 ring.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -10
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--gemv_ring_stages=2;--gemv_ring_stages=0;--gemv_ring_stages=2 --gemv_ring_kb=8 --gemv_warp_target_blocks=264;--gemv_ring_stages=2;--gemv_ring_stages=0"
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" > $OUT/ab.log 2>&1; echo "ab exit $?"
grep -E "^\(base|^--" $OUT/ab.log
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --repeat 1 --timeline 16 --gemv_ring_stages=2 > $OUT/timeline_ring.log 2>&1; echo "timeline exit $?"
grep -A14 "adds" $OUT/timeline_ring.log | head -16
