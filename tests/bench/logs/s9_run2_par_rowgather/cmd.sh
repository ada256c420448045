# Session 9 run 2: par staging in one round trip (all layouts), act-order RMSNorm row gather
# (off, A/B), fold default on. Old binaries: b2f8c80 (session 8 HEAD).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S
grep -E "folded vs|FAILED" $OUT/unit.log | head -20
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
BIN=/tmp/llama_gpu/bin
mkdir -p /tmp/old && for b in llama_bench gemv_bench; do xz -dc .carry/old/$b.xz > /tmp/old/$b; chmod +x /tmp/old/$b; done
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $BIN/gptq_matmul_test --gtest_filter='GptqGemvFused*' > $OUT/sanitizer.log 2>&1
echo "memcheck fused: exit $? $(grep 'ERROR SUMMARY' $OUT/sanitizer.log | tail -1)"
for shape in "--group 128" "--group 32" "--group 128 --act_order" "--group 32 --act_order"; do
  echo "=== OLD $shape"; /tmp/old/gemv_bench $shape --variants "warprms:32:0:1" | grep layer
  echo "=== NEW $shape"; $BIN/gemv_bench $shape --variants "warprms:32:0:1;warprms:32:0:1:1;warprms:32:0:2:1" | grep -E "warprms"
done > $OUT/gemv.log 2>&1
cat $OUT/gemv.log
STAGES="make7b" bash $S >/dev/null
for l in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l OLD (b2f8c80, --fold_down_perm)"; /tmp/old/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --fold_down_perm 2>&1 | grep -E "tok/s" | head -3
  sets="--gemv_one_trip_input=2"; [ $l != main ] && sets="--gemv_row_gather;--gemv_row_gather --gemv_one_trip_input=2;--gemv_one_trip_input=2"
  echo "=== $l NEW --ab"; $BIN/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "$sets" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
STAGES="check7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S
