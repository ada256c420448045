# Session 35 run 4 (H200): run 1's one gain, 32g with the whole 37.5 MB set-aside and the
# lm_head window (670.5 / 672.7 -> 679.7 / 679.6, while main, 64g and 128g lost 4-5%):
# 32g at 0, 16 and 64 (capped at 37.5) MB, and 64 MB of set-aside without the lm_head's
# window (LLAMA_L2_NO_WINDOW, this run's build only: does the set-aside alone do it?);
# main with the set-aside alone; the 32g timelines at 0 and 64 MB. Alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True main" bash $S >/dev/null
for lv in "gptq-4bit-32g-actorder_True:0 w64 nw64 16 16 nw64 w64 0" "main:nw64 0"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    mb=${v#nw}; mb=${mb#w}
    if [ ${v#nw} != $v ]; then export LLAMA_L2_NO_WINDOW=1; else unset LLAMA_L2_NO_WINDOW; fi
    timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 --l2_persist_lm_head_mb=$mb > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'L2 persist|copy bw|on-device greedy|rror' $OUT/d.log | tr -s ' ' | cut -c1-60 | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
unset LLAMA_L2_NO_WINDOW
for v in 0 64; do
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 --l2_persist_lm_head_mb=$v > $OUT/timeline_32g_$v.log 2>&1
  echo "== timeline $v"; grep -E "GemvWarp|Attention|Dense|RmsNorm|Greedy|step:" $OUT/timeline_32g_$v.log | head -12 | awk '{print $1, $2, $(NF-5), $(NF-4)}'
done
rm -f $OUT/d.log $OUT/summary.txt
