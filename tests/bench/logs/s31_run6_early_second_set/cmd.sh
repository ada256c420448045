# Session 31 run 6 (H200): the slot stream issues its second set of weight loads in its first
# iteration, after the staging's L2 round trip and barrier: until then a warp has only the
# set it loaded before the PDL wait in flight. LLAMA_GEMV_EARLY=1 issues the second set right
# after the wait, before the staging; =2 in Pre, before the wait (session 8's 8 loads before
# the wait, on today's kernel). 80 registers; ptxas spills 8 bytes in main's kernel, 0-32 in
# others. ea1's warp-GEMV tests (ea2's not carried: the 64 MiB limit), then decode alternating processes (main, 32g, main).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
for v in ea1 ea2; do mkdir -p /tmp/$v; for f in llama_bench gptq_matmul_test; do [ -f .carry/$v/$f.xz ] || continue;
  xz -dc .carry/$v/$f.xz > /tmp/$v/$f; chmod +x /tmp/$v/$f; done; done
for v in ea1; do
  /tmp/$v/gptq_matmul_test --gtest_filter='*M1*:GptqGemv*' > $OUT/gptq_$v.log 2>&1
  echo "gptq_matmul_test $v exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/gptq_$v.log | head -8 | tr '\n' ' ')"
done
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-32g-actorder_True main; do
  for v in base ea1 ea2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L:0:14}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L:0:14}_$v.log | tr -s ' ')"
  done
done
