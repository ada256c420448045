# Session 36 run 3 (H200): DecodeArgmax's ids written by the advance kernel into pinned host
# memory (CudaOptions::ids_by_kernel, a graph per run-ahead parity) against a device-to-host
# copy after each step's graph (=false, the behaviour before). One build (prepare_carry.sh);
# the option picks. Unit tests first, then alternating processes per layout with the
# on-device greedy figure and the DecodeArgmax run-ahead figure (--decode_argmax).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test sampling_test small_kernels_test" bash $S
grep -E "^\[  FAILED|DecodeArgmaxRunAhead" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True" bash $S >/dev/null
for lv in "main:true false false true" "gptq-4bit-64g-actorder_True:false true true false"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --decode_argmax --repeat 2 --prefill_fp16_weights=false --long_context 0 --ids_by_kernel=$v > $OUT/d.log 2>&1
    echo "== ids_by_kernel=$v $l: $(grep -E 'decode tok/s|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== ids_by_kernel=$v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log
