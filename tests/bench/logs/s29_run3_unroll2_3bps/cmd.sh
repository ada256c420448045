# Session 29 run 3 (H200): the warp GEMV with 2 loads per lane in flight (kUnroll 2,
# unroll2.patch) at its default 3 blocks per SM (run 2: read-only, 3:2 streams a layer's chain
# in 29.0 us against 33.6 for the GEMV's 3:4; session 26 tried kUnroll 2 only at 4 blocks per
# SM), a second llama_bench and gptq_matmul_test built from this code + the patch
# (.carry/alt_ku2), alternating processes with the default binary on main and 128g; with
# units aimed at 396 blocks too. First the tests of the two review refactors (RopeEightWith
# through LoadPairs + RopePairs; StageChunks), now in the default binaries.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="attention_test gptq_matmul_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -8
for a in llama_bench gptq_matmul_test; do xz -dc .carry/alt_ku2/$a.xz > /tmp/ku2_$a && chmod +x /tmp/ku2_$a; done
LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures timeout 120 /tmp/ku2_gptq_matmul_test > $OUT/ku2_gptq_matmul_test.log 2>&1; echo "ku2 gptq_matmul_test exit $?"
grep -E "FAILED|PASSED" $OUT/ku2_gptq_matmul_test.log | head -5
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-128g-actorder_True; do
  M=/tmp/llama_gpu/7b/$L
  for i in 1 2; do
    echo "=== $L base $i" >> $OUT/ab.log; timeout 60 $B/llama_bench --model $M $R >> $OUT/ab.log 2>&1; echo "base $i exit $?"
    echo "=== $L ku2 $i" >> $OUT/ab.log
    timeout 100 /tmp/ku2_llama_bench --model $M $R --ab "--gemv_warp_target_blocks=396;--gemv_warp_target_blocks=0" >> $OUT/ab.log 2>&1; echo "ku2 $i exit $?"
  done
done
grep -E "^===|^decode tok/s|^\(base|^--" $OUT/ab.log
