# Session 11 run 8 (H200): the split attention kernel merging in a thread-block cluster
# (--split_attention_cluster): tests, memcheck, A/B on main and 128g (2048 context; and
# short context with the split kernel at every step, --rope_split_attention=2).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test long_context_test cuda_fixture_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED|1100 and 1400" $OUT/unit.log | head -30
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeSplitAttentionTest*:RopeDecodeAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S
for l in main gptq-4bit-128g-actorder_True; do
echo "=== $l"
$B/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "--split_attention_cluster=false;--split_attention_cluster;--split_attention_cluster=false;--split_attention_cluster;--rope_split_attention=2 --split_attention_cluster" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
