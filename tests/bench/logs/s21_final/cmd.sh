# Session 21 final run (H200): this session's attention kernel (committed) plus the decode
# embedding over 16 blocks (CudaOptions::embed_blocks). Every CUDA unit test; 7B CUDA vs CPU
# on main and 32g; same-process A/B of --embed_blocks on main; the per-kernel timeline of
# main; the service stage (llamad --backend=cuda end to end).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -20
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "--embed_blocks=1;--embed_blocks=16;--embed_blocks=1;--embed_blocks=16" > $OUT/ab.log 2>&1
echo "ab exit $?"; grep -E "^A/B|^\(base|^--embed" $OUT/ab.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 --ab "--embed_blocks=1;--embed_blocks=16" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^--|Embedding|GptqGemvWarpKernel<128, 1, true> *384|RopeDecode|step:" $OUT/timeline.log
STAGES="service" timeout 120 bash $S >/dev/null 2>&1; echo "service exit $?"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b|service|llamad|llamactl|generate"
