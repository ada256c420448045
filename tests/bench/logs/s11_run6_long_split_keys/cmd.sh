# Session 11 run 6 (H200): the split attention kernel walking longer splits in 64-key tiles
# (--attn_long_split_keys): tests, memcheck, A/B at 2048 context on main and 128g, ncu.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED" $OUT/unit.log | head -20
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeSplitAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S
for l in main gptq-4bit-128g-actorder_True; do
echo "=== $l"
$B/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "--attn_long_split_keys=0;--attn_long_split_keys=128;--attn_long_split_keys=192;--attn_long_split_keys=256;--attn_long_split_keys=0;--attn_long_split_keys=128;--attn_long_split_keys=192;--attn_long_split_keys=256" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
for f in 0 192; do
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model /tmp/llama_gpu/7b/main --backend cuda --profile_step --prompt 2048 --attn_long_split_keys=$f > /tmp/ncu_long.csv 2>>$OUT/ncu.log
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv 2>&1 | tee -a $OUT/ncu_long.txt | grep -E "Attention|sum of"
done
