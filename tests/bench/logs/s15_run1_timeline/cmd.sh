# Session 15 run 1: the decode step's kernel timeline inside the replayed graphs (CUPTI,
# llama_bench --timeline), the q|k|v GEMV sized apart (--qkv_gemv_target_blocks) against the
# default, attention left out as the reference; the tests not yet run on a GPU.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv > $OUT/unit.log
$B/gptq_matmul_test --gtest_filter='*TargetBlocks*' >> $OUT/unit.log 2>&1; echo "gptq_matmul_test exit $?" >> $OUT/unit.log
$B/small_kernels_test >> $OUT/unit.log 2>&1; echo "small_kernels_test exit $?" >> $OUT/unit.log
grep -E "exit|PASSED|FAILED" $OUT/unit.log
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
timeout 240 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false --timeline 32 \
  --ab "--qkv_gemv_target_blocks=192;--skip_ops=2" > $OUT/timeline_main.log 2>&1
echo "timeline exit $?"; cat $OUT/timeline_main.log
timeout 150 $B/llama_bench --model $M/main --decode_only --repeat 3 --prefill_fp16_weights=false \
  --ab "--qkv_gemv_target_blocks=192;--qkv_gemv_target_blocks=264;--qkv_gemv_target_blocks=0;--qkv_gemv_target_blocks=192;--qkv_gemv_target_blocks=264" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; cat $OUT/ab_main.log
timeout 120 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True --decode_only --repeat 3 --prefill_fp16_weights=false \
  --ab "--qkv_gemv_target_blocks=192;--qkv_gemv_target_blocks=264;--qkv_gemv_target_blocks=0" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; cat $OUT/ab_32g.log
