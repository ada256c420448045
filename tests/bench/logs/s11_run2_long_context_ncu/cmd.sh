# Session 11 run 2 (H200): where 2048-context decode time goes (main): --skip_ops=2 (attention
# left out) A/B, ncu per-kernel breakdown of one step at position 2049, ncu sections of the
# RoPE and split-attention kernels there.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS=main bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
B=/tmp/llama_gpu/bin
L=/tmp/llama_gpu/7b/main
$B/llama_bench --model $L --backend cuda --repeat 3 --decode_only --ab "--skip_ops=0;--skip_ops=2;--skip_ops=0;--skip_ops=2;--attn_split_keys=128;--attn_split_keys=32" 2>&1 | sed -n '/^A\/B set/,$p' > $OUT/ab.log 2>&1
cat $OUT/ab.log
ncu --profile-from-start off --graph-profiling node --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  $B/llama_bench --model $L --backend cuda --profile_step --prompt 2048 > /tmp/ncu_long.csv 2>>$OUT/ncu.log
echo "ncu exit $?"
python3 deploy/gpu/ncu_breakdown.py /tmp/ncu_long.csv > $OUT/ncu_long.txt 2>&1; cat $OUT/ncu_long.txt
ncu --profile-from-start off --graph-profiling node -k regex:"Attention|Rope" --launch-skip 4 --launch-count 2 --cache-control none \
  --clock-control none --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats $B/llama_bench --model $L --backend cuda --profile_step --prompt 2048 > $OUT/ncu_attn.txt 2>&1
echo "ncu attn exit $?"
grep -E "^  [A-Za-z].*\(|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Block Limit|Eligible|Issued Warp|Grid Size|Stall" $OUT/ncu_attn.txt | head -60
