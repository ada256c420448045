# Session 23 run 1 (H200): kStageAllPreIdx (prepared in session 22, 5e5b157, off): the act-order
# single kernel's row gather reuses the indices Pre loaded before the PDL wait instead of
# loading them again after its loop over the row. Unit tests that cover it (gptq_matmul_test:
# two variants with it; cuda_fixture_test), then per act-order layout a same-process A/B.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
for l in gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "--gemv_gather_pre_idx;--gemv_gather_pre_idx=false;--gemv_gather_pre_idx;--gemv_gather_pre_idx=false" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
