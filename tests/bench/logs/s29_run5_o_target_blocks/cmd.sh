# Session 29 run 5 (H200): the o_proj GEMV cut apart from the others
# (CudaOptions::o_gemv_target_blocks, llama_bench --o_gemv_target_blocks): 512 blocks give
# units of 4 64-row blocks (every weight of a warp loaded before the PDL wait; 1.3 waves at 3
# blocks per SM), 256 units of 8, 1024 units of 2, against the default (352 blocks, units of
# 6: a second set after the wait). Same process, alternating, main, 128g and 32g, 128 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="" bash $S >/dev/null
LAY="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True"
STAGES="make7b" LAYOUTS="$LAY" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--o_gemv_target_blocks=512;--o_gemv_target_blocks=256;--o_gemv_target_blocks=1024;--o_gemv_target_blocks=0;--o_gemv_target_blocks=512"
for L in $LAY; do
  echo "=== $L" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$L $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "$L exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
