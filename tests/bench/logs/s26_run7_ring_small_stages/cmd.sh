# Session 26 run 7 (H200): the TMA weight ring with stages shorter than a set of 4 blocks:
# 4 x 2 blocks (1 KB stages, sol_bench's 3:4x2 read the chain in 27.4 us against 33.6 for
# registers, while 2 x 4, run 3's ring, read it in 34.6, runs 2 and 6) and 8 x 1 (512 B),
# against the registers and run 3's 2 x 4 (main, same process); gptq_matmul_test and
# cuda_fixture_test's ring test first.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" GTEST_FILTER="*MatchesReference*:*WeightRing*" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -10
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--gemv_ring_stages=4 --gemv_ring_kb=2;--gemv_ring_stages=0;--gemv_ring_stages=8 --gemv_ring_kb=1;--gemv_ring_stages=2 --gemv_ring_kb=4;--gemv_ring_stages=4 --gemv_ring_kb=2;--gemv_ring_stages=0"
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" > $OUT/ab.log 2>&1; echo "ab exit $?"
grep -E "^\(base|^--" $OUT/ab.log
