# Session 30 run 5 (H200): where today's warp GEMV waits (diagnosis for the next session; the
# last stall breakdown is session 5's, on a kernel since rewritten). ncu at the run's own clocks
# (--clock-control none) on gemv_bench's layer of four GEMVs (q|k|v, o, gate|up, down) as the
# engine runs them (warprms:32:0:2:1:7, zero points all 8), g128 and 32g act-order, after a
# warm-up layer.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="" bash $S >/dev/null
for shape in "--group 128 --uniform_zeros" "--group 32 --act_order --uniform_zeros"; do
  echo "=== $shape" >> $OUT/ncu_gemv.txt
  timeout 200 ncu --clock-control none -k regex:GptqGemvWarpKernel --launch-skip 4 --launch-count 4 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy \
    --section MemoryWorkloadAnalysis --section LaunchStats \
    $B/gemv_bench $shape --variants warprms:32:0:2:1:7 --repeat 1 >> $OUT/ncu_gemv.txt 2>&1
  echo "ncu exit $?"
done
grep -E "^===|GptqGemvWarpKernel|Duration|DRAM Throughput|Stall|Issued Warp|Eligible Warps|Active Warps Per|Achieved Occupancy|L1/TEX Hit|Mem Busy|Max Bandwidth|Grid Size|Registers" \
  $OUT/ncu_gemv.txt | cut -c1-120 | head -150
