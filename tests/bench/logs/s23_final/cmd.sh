# Session 23 final run (H200), code fbeca02 (the act-order single kernel's row gather takes
# the indices Pre loaded before the PDL wait, now the default). Every CUDA unit test; the
# bench of all four layouts (the issue 6 table); the per-kernel timelines of main and 128g at
# context 128 and 2048 (the long-context split attention kernel's share).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|prefill tok/s|first token" $OUT/bench.log
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/timeline.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 2048 --long_new 32 --repeat 1 --prefill_fp16_weights=false --timeline 32 >> $OUT/timeline.log 2>&1
  echo "timeline $l exit $?"
done
grep -E "^===|context|Attention|step:" $OUT/timeline.log | cut -c1-150
