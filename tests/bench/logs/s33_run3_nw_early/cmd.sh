# Session 33 run 3 (H200): the warp GEMV's RMSNorm weights loaded before the PDL wait
# (GemvWarpBlock::Pre): for act-order q|k|v and gate|up (the row gather) the whole norm weight
# vector copied into the row's shared memory, multiplied by x after the wait (16 KB fewer L2
# reads a block after it); for main's one-trip staging the weights of the thread's rows in
# registers. Same bits. Binaries: new (this build: both, and run 1's held merge), nw0 (the
# GEMV files of ea13752 with run 1's held merge: the A/B of this change alone), old (ea13752).
# gptq_matmul_test + cuda_fixture_test first, then decode 128 + 256, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="old nw0"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
for t in gptq_matmul_test cuda_fixture_test; do
  timeout 150 $B/$t > $OUT/t.log 2>&1; echo "$t exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]|SKIPPED \]' $OUT/t.log | head -8 | tr '\n' ' ')"
  cat $OUT/t.log >> $OUT/tests.log
done
rm -f $OUT/t.log
STAGES="make7b" bash $S >/dev/null
for lv in "gptq-4bit-128g-actorder_True:nw0 new nw0 new" "gptq-4bit-32g-actorder_True:new nw0" "main:new nw0 old"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
