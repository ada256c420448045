# Session 23 run 2 (H200): the greedy tail folded into the lm_head GEMV (CudaOptions::lm_head_argmax,
# kernels::ArgmaxFold: per-block best column, one 64-bit atomicMax per row, the last block
# advances token / position / history) instead of the GreedyAdvance kernel after it; and the
# lm_head's first four weight loads per lane before its PDL wait (--dense_gemv_pre_loads).
# Unit tests (small_kernels_test: the fold against LaunchArgmax and the host; the fixture
# and sampling tests run greedy decodes through it), A/B on main and 32g, timeline of main.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test sampling_test cuda_fixture_test gptq_matmul_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
echo "=== main" >> $OUT/ab.log
timeout 170 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "--lm_head_argmax=false;--lm_head_argmax;--lm_head_argmax=false;--lm_head_argmax;--lm_head_argmax --dense_gemv_pre_loads;--lm_head_argmax=false --dense_gemv_pre_loads;--lm_head_argmax --dense_gemv_pre_loads" >> $OUT/ab.log 2>&1
echo "ab main exit $?"
echo "=== 32g" >> $OUT/ab.log
timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True $R --ab "--lm_head_argmax=false;--lm_head_argmax;--lm_head_argmax=false;--lm_head_argmax" >> $OUT/ab.log 2>&1
echo "ab 32g exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "Dense|Greedy|Rms|Embed|step" $OUT/timeline.log | cut -c1-150 | tail -12
