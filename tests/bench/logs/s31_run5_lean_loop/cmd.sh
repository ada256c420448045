# Session 31 run 5 (H200): fewer instructions per set in the warp GEMV's slot stream. Run 4's
# ncu: 12.6 cycles between a warp's instructions, long scoreboard 3.6, no instruction 2.1,
# wait 1.75, not selected 1.3, math pipe 1.0; the g128 loop body is 253 SASS instructions a set
# of 4 64-row blocks, ~90 of them essential (LOP3, SHF, HMMA, LDS). llama_bench built with
# LLAMA_GEMV_LEAN=1 (units of whole sets stream with no per-block bounds checks and no copy of
# the next set into `cur`: two register sets alternate; default build unchanged, ptx_diff.sh):
# its full gptq_matmul_test, its loop's sm_90 code, then decode alternating processes with the
# default binary (main twice, 128g, 32g).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
mkdir -p /tmp/lean; for f in llama_bench gptq_matmul_test; do xz -dc .carry/lean/$f.xz > /tmp/lean/$f; chmod +x /tmp/lean/$f; done
/tmp/lean/gptq_matmul_test > $OUT/gptq_lean.log 2>&1
echo "gptq_matmul_test lean exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/gptq_lean.log | head -8 | tr '\n' ' ')"
CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$CUOBJ -sass /tmp/lean/llama_bench 2>/dev/null | awk '/Function : /{p = ($0 ~ /GptqGemvWarpKernelILi128ELi1ELb1E/)} p' > $OUT/sass_g128_slots_lean.txt
echo "lean sass lines $(wc -l < $OUT/sass_g128_slots_lean.txt), HMMA $(grep -c HMMA $OUT/sass_g128_slots_lean.txt)"
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True main; do
  for v in base lean; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L:0:14}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L:0:14}_$v.log | tr -s ' ')"
  done
done
xz -9 $OUT/sass_g128_slots_lean.txt
