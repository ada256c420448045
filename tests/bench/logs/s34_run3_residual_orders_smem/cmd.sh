# Session 34 run 3 (H200): run 2's residual orders with the output targets kept in shared
# memory (run 2 held them in registers across the stream: its default path was 1-2.5%
# slower than head) and the rebase stored after the staging. Binaries: head (8c50573's
# gptq_gemv_warp.cu), the new build with --act_order_residual off / on. Correctness:
# cuda_fixture_test, gptq_matmul_test. Decode 128 + 256, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="cuda_fixture_test gptq_matmul_test" bash $S | tail -2
grep -E "residual in the GEMVs|FAILED" $OUT/unit.log | head -20
mkdir -p /tmp/head; xz -dc .carry/head/llama_bench.xz > /tmp/head/llama_bench; chmod +x /tmp/head/llama_bench
STAGES="make7b" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True main" bash $S >/dev/null
for lv in "gptq-4bit-64g-actorder_True:head off on on off head" "gptq-4bit-32g-actorder_True:on off head head off on" \
          "gptq-4bit-128g-actorder_True:head on off off on head" "main:head off off head"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; f=false; [ $v = on ] && f=true; [ $v = head ] && bin=/tmp/head/llama_bench
    flag="--act_order_residual=$f"; [ $v = head ] && flag=""
    timeout 60 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 $flag > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
