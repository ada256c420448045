# Session 35 run 3 (H200): o_proj's warp GEMV (units of 8 64-row blocks: two sets of 4 loads
# a lane) loading both sets before the PDL wait instead of the first only: attention, its
# predecessor, reads little, so the second set's round trip would no longer follow the
# wait. Binaries: head (the default build) and o_early (GEMV_O_EARLY=1: units of at most two
# sets take GemvWarpBlock<.., kEarly = true>). Decode 128 + 256, alternating processes; the
# timeline of main with o_early.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
mkdir -p /tmp/o_early; xz -dc .carry/o_early/llama_bench.xz > /tmp/o_early/llama_bench; chmod +x /tmp/o_early/llama_bench
for lv in "main:head early early head head early" "gptq-4bit-64g-actorder_True:early head head early" \
          "gptq-4bit-32g-actorder_True:head early early head"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v = early ] && bin=/tmp/o_early/llama_bench
    timeout 60 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
timeout 90 /tmp/o_early/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 > $OUT/timeline_early.log 2>&1
grep -E "GemvWarp|Attention|step:" $OUT/timeline_early.log | head -7 | cut -c1-170
rm -f $OUT/d.log $OUT/summary.txt
