# Session 29 run 6 (H200): o_proj's own K units (CudaOptions::o_gemv_target_blocks) now 256 by
# default (run 5: +0.2% main, +0.9% 32g, one sample each). The fixture tests and 7B CUDA vs
# CPU on 32g with it, then the A/B again in one process, alternating with the old cut (0:
# as the other GEMVs), 32g and main at 128 context (32g also units of 16, 128 blocks).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED" $OUT/unit.log | head -5
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True main" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
echo "=== 32g" >> $OUT/ab.log
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True $R \
  --ab "--o_gemv_target_blocks=0;--o_gemv_target_blocks=256;--o_gemv_target_blocks=0;--o_gemv_target_blocks=128" >> $OUT/ab.log 2>&1
echo "=== main" >> $OUT/ab.log
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/main $R \
  --ab "--o_gemv_target_blocks=0;--o_gemv_target_blocks=256;--o_gemv_target_blocks=0" >> $OUT/ab.log 2>&1
grep -E "^===|^\(base|^--" $OUT/ab.log
STAGES="check7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
