# Session 12 run 2 (H100): new defaults (fp16 prefill outputs, no zero loads where all equal):
# unit tests, 7B CUDA vs CPU (32g), uniform-zeros A/B (32g, main), fp16-outputs prefill A/B
# with SM clock / power sampled, the bench of the 4 layouts.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test" bash $S
STAGES="make7b check7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S
STAGES="make7b" bash $S
for l in gptq-4bit-32g-actorder_True main; do
STAGES="abx" LAYOUTS=$l BENCH_ARGS="--repeat 3 --decode_only" AB_SETS="--gemv_uniform_zeros=false;--gemv_uniform_zeros;--gemv_uniform_zeros=false;--gemv_uniform_zeros" bash $S
done
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,utilization.gpu --format=csv -lms 100 > $OUT/clocks.csv 2>&1 &
SMI=$!
STAGES="abx" LAYOUTS=main BENCH_ARGS="--repeat 3 --ab_prefill" AB_SETS="--prefill_half_outputs=false;--prefill_half_outputs;--prefill_half_outputs=false;--prefill_half_outputs" bash $S
kill $SMI
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S
grep -E "FAILED|failed" $OUT/unit.log | head -20
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v "^=== .*--ab"
