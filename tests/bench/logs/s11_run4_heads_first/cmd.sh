# Session 11 run 4 (H200): the split attention kernel's blocks numbered head first
# (--attn_heads_first) A/B at 2048 context, 32-key splits, ncu of one step at position 2049.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
grep -E "FAILED" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS=main bash $S
L=/tmp/llama_gpu/7b/main
$B/llama_bench --model $L --backend cuda --repeat 3 --decode_only --long_new 64 --ab "--attn_heads_first=false;--attn_heads_first;--attn_heads_first=false;--attn_heads_first;--attn_heads_first --attn_split_keys=32;--rope_split_attention=0 --attn_split_keys=64" 2>&1 | sed -n '/^A\/B set/,$p' > $OUT/ab.log 2>&1
cat $OUT/ab.log
for f in "" "--attn_heads_first"; do
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model $L --backend cuda --profile_step --prompt 2048 $f > /tmp/ncu_long.csv 2>>$OUT/ncu.log
echo "ncu $f exit $?"
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv 2>&1 | grep -E "Attention|sum of" | tee -a $OUT/ncu_long.txt
done
ncu --profile-from-start off --graph-profiling node -k regex:"RopeSplit" --launch-skip 4 --launch-count 1 \
  --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats $B/llama_bench --model $L --backend cuda --profile_step --prompt 2048 --attn_heads_first > $OUT/ncu_attn.txt 2>&1
grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Eligible Warps|Issued Warp|Mem Busy|Max Bandwidth|L2 Hit|Stall" $OUT/ncu_attn.txt | head -30
