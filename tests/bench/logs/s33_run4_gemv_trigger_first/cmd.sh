# Session 33 run 4 (H200): the warp GEMV's griddepcontrol.launch_dependents at the kernel's
# first line instead of after Pre (its first weight loads, and the scales / zeros staged in
# shared memory: a memory round trip of the grid's last block before the next kernel may
# launch). Binaries: new (this build: ea13752's GEMV and run 1's held merge), tfirst
# (LLAMA_GEMV_TRIGGER_FIRST=1, gptq_gemv_warp.cu only). Also the attention, long-context and
# fixture CUDA tests on the held merge first. Decode 128 + 256, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="tfirst"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
for t in attention_test long_context_test cuda_fixture_test; do
  timeout 150 $B/$t > $OUT/t.log 2>&1; echo "$t exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/t.log | head -8 | tr '\n' ' ')"
  cat $OUT/t.log >> $OUT/tests.log
done
rm -f $OUT/t.log
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
for lv in "main:new tfirst new tfirst" "gptq-4bit-32g-actorder_True:tfirst new"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
