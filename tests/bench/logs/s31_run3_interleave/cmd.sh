# Session 31 run 3 (H200): the other direction of run 2. Spreading a warp's set over its unit
# (less locality) cost 19%; here the 8 tiles of a GEMV block are interleaved in memory by sets
# of 4 64-row blocks (LLAMA_QTILE_INTERLEAVE, a build macro: RepackGptqForMma and the warp
# GEMV's slot stream; default build unchanged, ptx_diff.sh), so that a block's 8 warps read one
# contiguous 16 KB span per set instead of 8 spans of 2 KB 32 KB apart. il1: [set][tile][block]
# (each warp's set still 2 KB contiguous); il2: [set][block][tile] (a warp's loads 4 KB apart).
# The variants' warp-GEMV tests (their split-K and prefill paths read the old layout: excluded),
# then decode, one process per binary, alternating (main twice, 128g, 32g). Prefill in the
# variants computes garbage (not the warp GEMV); decode's cost does not depend on the values.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
for v in il1 il2; do mkdir -p /tmp/$v; for f in llama_bench gptq_matmul_test; do
  xz -dc .carry/$v/$f.xz > /tmp/$v/$f; chmod +x /tmp/$v/$f; done; done
for v in il1 il2; do
  /tmp/$v/gptq_matmul_test --gtest_filter='*M1*:GptqGemv*' > $OUT/gptq_$v.log 2>&1
  echo "gptq_matmul_test $v exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/gptq_$v.log | head -8 | tr '\n' ' ')"
done
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True main; do
  for v in base il1 il2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L:0:14}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L:0:14}_$v.log | tr -s ' ')"
  done
done
