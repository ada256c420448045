# Session 22 run 5 (H200): one L1 / shared split for neighbouring kernels. After run 4, an
# act-order layer's q|k|v and gate|up GEMVs (row gather: +16 KB) still need a larger carve-out
# than its o and down GEMVs (64g/32g: 164 vs 132 KB; 128g: 132 vs 100 KB), and the attention
# kernel another. If an SM cannot hold blocks of kernels with different splits, each such
# boundary loses the PDL overlap. A/B in one process: every warp GEMV given the largest
# split of its layer (--gemv_carveout, percent of 228 KB, rounded up by the driver), and every
# kernel of the step given it (--launch_carveout).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
for lx in "gptq-4bit-32g-actorder_True --gemv_carveout=71;--launch_carveout=71;--gemv_carveout=71" \
          "gptq-4bit-128g-actorder_True --gemv_carveout=57;--launch_carveout=57" "main --launch_carveout=43"; do
  l=${lx%% *}; sets=${lx#* }
  echo "=== $l" >> $OUT/ab.log
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$sets" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
