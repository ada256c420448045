# Session 20 run 2 (H200): the one GEMV kernel made lean (kStageAll holds only the row gather
# and the one-trip staging: 37-45 KB of code instead of 79-87) and made the default. Every CUDA
# unit test; 7B CUDA vs CPU on main and 32g; same-process A/B lean single kernel vs two
# kernels on the four layouts; the bench of the four layouts (issue 6 table); the 32g
# timeline; rank 0's merge phases (--ab "--attn_clock") on main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
STAGES="make7b check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
STAGES="make7b" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
grep -E "FAILED" $OUT/unit.log | head -10
AB="--gemv_single_kernel=false;--gemv_single_kernel;--gemv_single_kernel=false;--gemv_single_kernel"
for l in main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 3 --prefill_fp16_weights=false --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^=== |^A/B|^\(base|^--gemv" $OUT/ab.log
STAGES="bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok|prefill tok|first token|at 2048|copy" $OUT/bench.log | grep -v -- "--ab"
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 > $OUT/timeline_32g.log 2>&1
echo "timeline exit $?"; tail -14 $OUT/timeline_32g.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --ab "--attn_clock" > $OUT/attn_clock.log 2>&1
echo "attn_clock exit $?"; tail -32 $OUT/attn_clock.log
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "unit|7b"
