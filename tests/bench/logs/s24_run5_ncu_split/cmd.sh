# Session 24 run 5 (H200), run 2's binaries (default = code 782f46a). ncu of the long-context
# split attention kernel (one decode step at position 2049, graphs off, so its cached rows are
# loaded after the PDL wait), main: speed of light, occupancy and cluster launch, warp states,
# memory workload; two layers' launches.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 200 ncu --profile-from-start off -k regex:RopeSplitAttention --launch-skip 2 --launch-count 2 --cache-control none \
  --clock-control none --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats \
  $B/llama_bench --model /tmp/llama_gpu/7b/main --backend cuda --profile_step --prompt 2048 > $OUT/ncu_split.txt 2>&1
echo "ncu exit $?"
grep -E "Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Cluster|Waves|Warp Cycles|Eligible|Issued Warp|No Eligible|Stall|L2 Hit|L1/TEX Hit" $OUT/ncu_split.txt | head -60
