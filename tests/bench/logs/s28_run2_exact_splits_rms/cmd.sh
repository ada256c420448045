# Session 28 run 2 (H200): two measurements in one run.
# 1. --attn_exact_splits (new, off): decode attention up to 1024 keys with exactly as many
#    64-key splits as the keys need instead of a power-of-two bucket (no empty split blocks);
#    same-process A/B, alternating, all four layouts at 128 context.
# 2. The review's BlockInvRms -> BlockRmsScale dedupe (kernels/gemv_common.cuh): `main`'s
#    one-trip warp GEMV's sm_90 code changed (the act-order layouts' kStageAll kernels are
#    byte-identical, ptx_diff.sh), so the carried binaries (with it) against a llama_bench
#    built without it (.carry/base), alternating processes on `main`. Its tests first.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -8
xz -dc .carry/base/llama_bench_base.xz > /tmp/llama_bench_base && chmod +x /tmp/llama_bench_base
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
AB="--attn_exact_splits;--attn_exact_splits=false;--attn_exact_splits"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
  grep -E "^===|^\(base|^--" $OUT/ab.log | tail -4
done
M=/tmp/llama_gpu/7b/main
for i in 1 2; do
  echo "=== base $i" >> $OUT/rms.log; timeout 60 /tmp/llama_bench_base --model $M $R >> $OUT/rms.log 2>&1; echo "base $i exit $?"
  echo "=== dedupe $i" >> $OUT/rms.log; timeout 60 $B/llama_bench --model $M $R >> $OUT/rms.log 2>&1; echo "dedupe $i exit $?"
done
grep -E "^===|^decode tok/s|on-device" $OUT/rms.log | head -20
