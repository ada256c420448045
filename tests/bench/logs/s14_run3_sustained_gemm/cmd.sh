# Session 14 run 3: prefill GEMMs timed at the clocks of a sustained prefill (the H200 sits at
# its 700 W cap at ~1.5 GHz there, run 1): cublasGemmEx's default against cublasLt's first 8
# heuristic algorithms per shape, each after 300 ms back to back; the SASS of the warp GEMV at
# 80 and 64 registers (run 2's loss); attention's cost in the replayed graph (--skip_ops=2).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > $OUT/smi.csv 2>&1 &
SMI=$!
$B/gemm_bench --rows 2048 --lt_algos 8 --sustain_ms 300 --repeat 10 > $OUT/gemm.log 2>&1
kill $SMI
cat $OUT/gemm.log
awk -F', ' 'NR>1 {c+=$2; n++; if ($2+0 < 1700) lo++} END {printf "smi: mean SM clock %.0f MHz over %d samples, %d below 1700\n", c/n, n, lo}' $OUT/smi.csv
cuobjdump -sass $B/gemv_bench > /tmp/all.sass 2>&1
for mb in 3 4; do
  awk -v pat="GptqGemvWarpKernelILi128ELi1ELb1ELi$mb" '/Function : /{p = index($0, pat) > 0} p' /tmp/all.sass > $OUT/sass_mb$mb.txt
  echo "mb=$mb lines $(wc -l < $OUT/sass_mb$mb.txt) LDG $(grep -c LDG $OUT/sass_mb$mb.txt) HMMA $(grep -c HMMA $OUT/sass_mb$mb.txt) LDL $(grep -c LDL $OUT/sass_mb$mb.txt) STL $(grep -c STL $OUT/sass_mb$mb.txt)"
done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
STAGES="abx" LAYOUTS="main" BENCH_ARGS="--decode_only --repeat 3" AB_SETS="--skip_ops=2;--skip_ops=0;--skip_ops=2" bash $S
