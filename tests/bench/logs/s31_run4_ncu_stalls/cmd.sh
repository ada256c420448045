# Session 31 run 4 (H200): why the warp GEMV waits (session 30's ncu had the counts, not the
# reasons). ncu at the run's own clocks on gemv_bench's engine GEMV (warprms:32:0:2:1:7, g128,
# the q|k|v / o / gate|up / down layer, after a warm-up), WarpStateStats with every stall
# reason printed, and SourceCounters (the hottest SASS lines and their stalls); then the sm_90
# code of the engine's g128 slot kernel (cuobjdump, if the device has it), for the next session.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="" bash $S >/dev/null
timeout 240 ncu --clock-control none -k regex:GptqGemvWarpKernel --launch-skip 4 --launch-count 4 \
  --section WarpStateStats --section SourceCounters --section SchedulerStats --print-details all \
  $B/gemv_bench --group 128 --uniform_zeros --variants warprms:32:0:2:1:7 --repeat 1 > $OUT/ncu_stalls.txt 2>&1
echo "ncu exit $?"
grep -E "GptqGemvWarpKernel|Stall|Warp Cycles Per|Issued Warp|Eligible|Active Warps|Duration" $OUT/ncu_stalls.txt | cut -c1-150 | head -120
CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
if [ -x "$CUOBJ" ]; then
  $CUOBJ -sass $B/llama_bench 2>/dev/null | awk '/Function : /{p = ($0 ~ /GptqGemvWarpKernelILi128ELi1ELb1E/)} p' > $OUT/sass_g128_slots.txt
  echo "cuobjdump lines $(wc -l < $OUT/sass_g128_slots.txt)"
else echo "no cuobjdump"; fi
xz -9 $OUT/ncu_stalls.txt
