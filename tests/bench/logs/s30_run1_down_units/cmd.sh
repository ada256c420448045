# Session 30 run 1 (H200): session 29's prepared down units (CudaOptions::down_gemv_target_blocks):
# the tests of the unit cut, then decode at 128 context in one process per layout, alternating
# the down GEMV's target: 0 (as the others: units of 16 of its 172 64-row blocks, 352 blocks),
# 256 (units of 22), 288 (units of 20, 288 blocks), 320 (units of 18, 320 blocks).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="gptq_matmul_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--down_gemv_target_blocks=256;--down_gemv_target_blocks=0;--down_gemv_target_blocks=288;--down_gemv_target_blocks=320;--down_gemv_target_blocks=256;--down_gemv_target_blocks=0"
for L in main gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $L" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$L $R --ab "$AB" >> $OUT/ab.log 2>&1
done
grep -E "^===|^\(base|^--" $OUT/ab.log
