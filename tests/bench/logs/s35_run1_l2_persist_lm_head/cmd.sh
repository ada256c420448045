# Session 35 run 1 (H200): the lm_head's first rows persisting in L2 between decode steps
# (CudaOptions::l2_persist_lm_head_mb, --l2_persist_lm_head_mb). Correctness: the new
# fixture test. Then decode 128 + 256, alternating processes (the set-aside is device-wide,
# so no same-process A/B): main at 0 / 16 / 32 / 64 (capped at the device's set-aside) MB,
# the act-order layouts at 0 / 64; a timeline of main at 0 and 64 for the lm_head's time.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="make7b" bash $S >/dev/null
nvidia-smi -q | grep -iE "L2|persist" | head
$B/cuda_fixture_test --gtest_filter='*L2Persist*:*GreedySequencesMatchReference*' > $OUT/unit.log 2>&1; tail -3 $OUT/unit.log
grep -E "L2 persist|FAILED|decode:" $OUT/unit.log | head -20
for lv in "main:0 64 16 32 32 16 64 0" "gptq-4bit-64g-actorder_True:64 0 0 64" "gptq-4bit-32g-actorder_True:0 64 64 0" \
          "gptq-4bit-128g-actorder_True:64 0 0 64"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 --l2_persist_lm_head_mb=$v > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'L2 persist|on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
for v in 0 64; do
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 --l2_persist_lm_head_mb=$v > $OUT/timeline_$v.log 2>&1
  echo "== timeline $v: $(grep -iE 'lm_head|step' $OUT/timeline_$v.log | tr -s ' ' | head -4 | tr '\n' '|')"
done
rm -f $OUT/d.log $OUT/summary.txt
