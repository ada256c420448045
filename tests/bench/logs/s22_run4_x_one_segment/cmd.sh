# Session 22 run 4 (H200): the warp GEMV's shared memory sized per kernel. Group parameters
# sized by G (g128: 16 groups a warp), and the act-order single kernel (kStageAll) holding one
# segment's x (its blocks lie in one segment): static shared memory per block, before -> now:
# <128,1> (main) 45.9 -> 29.5 KB, <128,3> 45.9 -> 20.8, <64,3> and <32,3> 45.9 -> 37.2 KB
# (+16 KB for the row gather of q|k|v and gate|up): three blocks of every act-order GEMV
# now fit the 164 KB carve-out or less (L1 >= 92 KB; before: 196 KB, 60 KB of L1).
# Every CUDA unit test; A/B in one process against the old footprint restored as unused
# dynamic shared memory (--gemv_extra_smem); the bench of all four layouts; 7B CUDA vs CPU on
# 32g and 128g; the per-kernel timeline of 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="small_kernels_test gptq_matmul_test attention_test cuda_fixture_test long_context_test sampling_test cuda_errors_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b bench" BENCH_ARGS="--repeat 3" bash $S >/dev/null
grep -E "^=== |decode tok/s|decode at|prefill tok/s|first token" $OUT/bench.log
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
for lx in "gptq-4bit-32g-actorder_True 8704" "gptq-4bit-64g-actorder_True 8704" "gptq-4bit-128g-actorder_True 25088"; do
  set -- $lx
  echo "=== $1 (old footprint: --gemv_extra_smem=$2)" >> $OUT/ab.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$1 $R --ab "--gemv_extra_smem=$2;--gemv_extra_smem=0;--gemv_extra_smem=$2" >> $OUT/ab.log 2>&1
  echo "ab $1 exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 >> $OUT/ab.log 2>&1
echo "timeline exit $?"; grep -E "Kernel|step:" $OUT/ab.log | tail -11
STAGES="check7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
