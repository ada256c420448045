# Session 33 run 6 (H200): run 4's trigger point (griddepcontrol.launch_dependents at the warp
# GEMV's first line) for the act-order layouts' kernel too (kStageAll; run 4 measured it on
# 32g alone, one pair: -0.3%). Binaries: new (run 5's final build: the one-trip kernel
# triggers first, kStageAll after Pre), tall (LLAMA_GEMV_TRIGGER_ALL=1: every instantiation
# first). Decode 128 + 256, alternating processes, one pair per act-order layout.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="tall"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
for lv in "gptq-4bit-128g-actorder_True:tall new" "gptq-4bit-64g-actorder_True:new tall" "gptq-4bit-32g-actorder_True:tall new"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
    timeout 80 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
