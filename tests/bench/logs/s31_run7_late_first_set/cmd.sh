# Session 31 run 7 (H200): the other side of run 6 (a second set in flight during the staging
# lost 13-17%): does the first set, issued before the PDL wait, delay the staging's round trip
# too? LLAMA_GEMV_LATE0=1: the slot stream's first set is issued only after the staging
# (nothing in flight before the wait); =2: half of it before the wait, half after the staging.
# la1's warp-GEMV tests (la2's not carried: the 64 MiB limit), then decode alternating
# processes (main, 32g, main).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
for v in la1 la2; do mkdir -p /tmp/$v; for f in llama_bench gptq_matmul_test; do [ -f .carry/$v/$f.xz ] || continue;
  xz -dc .carry/$v/$f.xz > /tmp/$v/$f; chmod +x /tmp/$v/$f; done; done
/tmp/la1/gptq_matmul_test --gtest_filter='*M1*:GptqGemv*' > $OUT/gptq_la1.log 2>&1
echo "gptq_matmul_test la1 exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/gptq_la1.log | head -8 | tr '\n' ' ')"
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-32g-actorder_True main; do
  for v in base la1 la2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L:0:14}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L:0:14}_$v.log | tr -s ' ')"
  done
done
