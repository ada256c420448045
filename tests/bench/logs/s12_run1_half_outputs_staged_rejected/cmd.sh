# Session 12 run 1 (H200): first run of the staged split-attention tiles (cd1d6d5) and of the
# fp16 prefill outputs; cublasLt algorithm sweep of the prefill GEMMs.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test attention_test long_context_test cuda_fixture_test" bash $S
STAGES="sanitize" SANITIZE_TESTS="attention_test small_kernels_test" SANITIZE_FILTER="RopeSplitAttentionTest*:RopeTest*:SwiGlu*" bash $S
STAGES="gemm" GEMM_ROWS=2048 GEMM_ARGS="--lt_algos 16" bash $S
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S
STAGES="abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --ab_prefill" AB_SETS="--prefill_half_outputs=false;--prefill_half_outputs;--prefill_half_outputs=false;--prefill_half_outputs" bash $S
for l in main gptq-4bit-32g-actorder_True; do
STAGES="abx" LAYOUTS=$l BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="--split_attention_stage=false;--split_attention_stage;--split_attention_stage=false;--split_attention_stage" bash $S
done
grep -E "FAILED|failed" $OUT/unit.log | head -20
