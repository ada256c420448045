# Session 11 run 5 (H200): CombineHead with every load of a step in flight at once (the
# split kernels' tail); tests, memcheck, A/B at 2048 context on main and 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test cuda_fixture_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED|CUDA paths" $OUT/unit.log | head -20
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeSplitAttentionTest*:DecodeAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S
for l in main gptq-4bit-128g-actorder_True; do
echo "=== $l"
$B/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "--attn_heads_first=false;--attn_heads_first;--attn_heads_first=false;--attn_heads_first;--rope_split_attention=0" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model /tmp/llama_gpu/7b/main --backend cuda --profile_step --prompt 2048 --attn_heads_first > /tmp/ncu_long.csv 2>>$OUT/ncu.log
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv 2>&1 | tee $OUT/ncu_long.txt | grep -E "Attention|sum of"
