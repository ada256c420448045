# Session 34 run 1 (H200): session 33's "RMSNorm weights before the PDL wait" again, now that
# the warp GEMV triggers at its first line. Session 33 run 3 measured it with the trigger after
# Pre, where the act-order copy of the norm weights into shared memory (a memory round trip)
# also delayed the next kernel's launch. Binaries: head (8c50573's gptq_gemv_warp.cu), nw1
# (LLAMA_GEMV_NW_EARLY=1: act-order row gather only, kStageAll), nw3 (=3: also main's one-trip
# rows' weights in registers). Decode 128 + 256, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="head nw1 nw3"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True main" bash $S >/dev/null
for lv in "gptq-4bit-64g-actorder_True:head nw1 nw1 head" "gptq-4bit-128g-actorder_True:nw1 head head nw1" "gptq-4bit-32g-actorder_True:head nw1 nw1 head" "main:nw3 head"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    timeout 80 /tmp/$v/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
