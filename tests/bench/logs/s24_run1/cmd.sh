# Session 24 run 1 (H200), code 288754e. Every CUDA unit test (attention_test's fixed split
# test and the early-K comparison have not run on a GPU yet); same-process A/B of the split
# kernel's early K loads (--attn_early_k, off) at 2048 context on main and 128g; the bench
# of all four layouts on the final code of session 23 (the issue 6 table).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
AB="--attn_early_k;--attn_early_k=false;--attn_early_k;--attn_early_k=false"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|prefill tok/s|first token" $OUT/bench.log
