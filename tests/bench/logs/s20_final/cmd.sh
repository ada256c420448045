# Session 20 final run (H200): the lean one-GEMV kernel on act-order layers only
# (GptqMatrix::act_order_layer; main keeps session 19's kernels). gptq_matmul_test and
# cuda_fixture_test; the bench of the four layouts (issue 6 table); same-process A/B against
# two kernels on 64g and 128g (short context); rank 0's merge phases on main (--attn_clock).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
grep -E "FAILED" $OUT/unit.log | head -10
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v -- "--ab"
AB="--gemv_single_kernel=false;--gemv_single_kernel;--gemv_single_kernel=false;--gemv_single_kernel"
for l in gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^=== |^A/B|^\(base|^--gemv" $OUT/ab.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --ab "--attn_clock" > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; tail -32 $OUT/attn_clock.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
