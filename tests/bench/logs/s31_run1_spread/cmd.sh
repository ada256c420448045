# Session 31 run 1 (H200): does the granule of a warp's set matter? Session 26's read-only TMA
# rings streamed 2 KB copies far slower than 1 KB or 4 KB ones (3 blocks/SM: 34.6 vs 27.4 us a
# layer), and the warp GEMV's set is 4 adjacent 64-row blocks = 2 KB. (a) sol_bench's read-only
# chain with each chunk of a warp's run read in spread sets (ReadStreamTuning::spread: "xC"
# single lines from 4 parts of C lines, "pC" pairs from 2 halves); (b) llama_bench built with
# LLAMA_GEMV_SPREAD=1 / 2 (StreamSlots reads each 8-group period in spread sets; default build
# unchanged, ptx_diff.sh), its gptq_matmul_test, decode on main alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="" bash $S >/dev/null
for v in sp1 sp2; do mkdir -p /tmp/$v; for f in llama_bench gptq_matmul_test; do
  xz -dc .carry/$v/$f.xz > /tmp/$v/$f; chmod +x /tmp/$v/$f; done; done
$B/small_kernels_test --gtest_filter='*ReadStream*' > $OUT/small.log 2>&1; echo "small_kernels ReadStream exit $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/small.log | tr '\n' ' ')"
for v in sp1 sp2; do
  /tmp/$v/gptq_matmul_test --gtest_filter='*M1*:GptqGemv*' > $OUT/gptq_$v.log 2>&1
  echo "gptq_matmul_test $v exit $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/gptq_$v.log | tr '\n' ' ')"
done
C="3:4:1:1;3:4:1:1:x16;3:4:1:1:p16;3:4:1:1:x8;3:4:1:1:p8;3:4:1:1:x32;4:4:1:1;4:4:1:1:x16;3:4:1:1"
timeout 150 $B/sol_bench --repeat 30 --spread_layer -1 --configs "$C" > $OUT/sol.log 2>&1; echo "sol exit $?"
grep -E "^device|chain|layer " $OUT/sol.log | grep -v "µs from"
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for round in 1 2; do
  for v in base sp1 sp2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/main $R > $OUT/dec_main_${v}_$round.log 2>&1
    echo "main $v $(grep -E 'on-device greedy' $OUT/dec_main_${v}_$round.log | tr -s ' ')"
  done
done
