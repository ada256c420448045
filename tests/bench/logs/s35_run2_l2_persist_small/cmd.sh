# Session 35 run 2 (H200): run 1 found 32 and 37.5 MB of persisting lm_head losing (the
# GEMVs slower with less normal L2, the lm_head no faster) and 16 MB +0.4% on main. Here
# 0 / 8 / 16 MB alternating on main and 64g, and the timeline at 0, 8 and 16 MB: does the
# lm_head read its persisting rows from L2 at all?
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True" bash $S >/dev/null
for lv in "main:0 16 8 8 16 0 16 8 0" "gptq-4bit-64g-actorder_True:16 0 8 8 0 16"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 --l2_persist_lm_head_mb=$v > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
for v in 16 0 8; do
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 --l2_persist_lm_head_mb=$v > $OUT/timeline_$v.log 2>&1
  echo "== timeline $v: $(grep -E 'DenseGemv|step:' $OUT/timeline_$v.log | tr -s ' ' | head -2 | tr '\n' '|')"
done
rm -f $OUT/d.log $OUT/summary.txt
