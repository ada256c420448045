# Session 34 run 2 (H200): the residual kept in the RMSNorm GEMVs' act-order input orders
# (CudaOptions::act_order_residual, llama_bench --act_order_residual; off by default in this
# build). Correctness: cuda_fixture_test (ActOrderResidualMatchesRowGather and every default
# path: Post's output targets changed for all), gptq_matmul_test. Decode 128 + 256,
# alternating processes of one binary: on / off.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="cuda_fixture_test gptq_matmul_test" bash $S | tail -2
grep -E "residual in the GEMVs|FAILED" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
for lv in "gptq-4bit-64g-actorder_True:on off on off" "gptq-4bit-32g-actorder_True:off on off on"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    f=false; [ $v = on ] && f=true
    timeout 80 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 --act_order_residual=$f > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
