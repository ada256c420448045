# Session 36 run 2 (H200): DecodeGreedy's steps replayed 8 to a graph
# (CudaOptions::decode_graph_steps, llama_bench --decode_graph_steps) against a graph per step
# (=1, the behaviour before). One build (prepare_carry.sh); the option picks. Unit tests
# first (cuda_fixture_test has the new MultiStepGraphsMatchOneStepGraphs), then alternating
# decode processes per layout, then a CUPTI timeline of main with each setting.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test small_kernels_test" bash $S
grep -E "MultiStep|diverges" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
for lv in "main:1 8 8 1" "gptq-4bit-64g-actorder_True:8 1 1 8" "gptq-4bit-32g-actorder_True:1 8 8 1"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 --decode_graph_steps=$v > $OUT/d.log 2>&1
    echo "== steps $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== steps $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
for v in 1 8; do
  timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/main --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --decode_gap_ms=1000 --timeline 64 --decode_graph_steps=$v > $OUT/timeline_steps$v.log 2>&1
  echo "== timeline steps $v: $(grep -iE 'step|tok/s' $OUT/timeline_steps$v.log | tail -4 | tr -s ' ' | tr '\n' '|')"
done
rm -f $OUT/d.log
