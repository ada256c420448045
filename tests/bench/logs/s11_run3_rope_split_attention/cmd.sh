# Session 11 run 3 (H200): first run of the RoPE-inside split attention kernel
# (kernels::LaunchRopeSplitAttention, CudaOptions::rope_split_attention = 1: past 1024 keys):
# unit tests, memcheck, 7B main CUDA vs CPU (split runner included), decode A/B on main
# (long column = 2048 context), ncu of one step at position 2049.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test cuda_fixture_test small_kernels_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED|split kernel|CUDA paths" $OUT/unit.log | head -20
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeSplitAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b check7b" LAYOUTS=main bash $S
grep -E "split attention|FAILED" $OUT/check7b.log
L=/tmp/llama_gpu/7b/main
$B/llama_bench --model $L --backend cuda --repeat 3 --decode_only --ab "--rope_split_attention=0;--rope_split_attention=1;--rope_split_attention=0;--rope_split_attention=1;--rope_split_attention=2" 2>&1 | sed -n '/^A\/B set/,$p' > $OUT/ab.log 2>&1
cat $OUT/ab.log
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model $L --backend cuda --profile_step --prompt 2048 > /tmp/ncu_long.csv 2>>$OUT/ncu.log
echo "ncu exit $?"
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv > $OUT/ncu_long.txt 2>&1; cat $OUT/ncu_long.txt
tail -4 $OUT/summary.txt
