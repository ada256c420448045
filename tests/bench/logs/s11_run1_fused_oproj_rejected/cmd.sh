# Session 11 run 1 (H200): first run of the fused o_proj (154782f, CudaOptions::fuse_o_proj):
# attention_test (fused-o variant vs float64), memcheck of RopeDecodeAttentionTest*, 7B main
# CUDA vs CPU (fused-o runner included), decode A/B on main, ncu per-kernel with it on.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED|fused|Fused" $OUT/unit.log | head -20
compute-sanitizer --tool memcheck --error-exitcode 99 $B/attention_test --gtest_filter='RopeDecodeAttentionTest*' > $OUT/memcheck.log 2>&1
echo "memcheck exit $?"; grep "ERROR SUMMARY" $OUT/memcheck.log
STAGES="make7b check7b" LAYOUTS=main bash $S
grep -E "fused into|FAILED" $OUT/check7b.log
L=main
$B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --repeat 3 --decode_only --ab "--fuse_o_proj=false;--fuse_o_proj;--fuse_o_proj=false;--fuse_o_proj" 2>&1 | sed -n '/^A\/B set/,$p' > $OUT/ab.log 2>&1
cat $OUT/ab.log
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model /tmp/llama_gpu/7b/$L --backend cuda --profile_step --fuse_o_proj > /tmp/ncu_fo.csv 2>>$OUT/ncu.log
echo "ncu exit $?"
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_fo.csv > $OUT/ncu_fo.txt 2>&1; head -30 $OUT/ncu_fo.txt
tail -8 $OUT/summary.txt
