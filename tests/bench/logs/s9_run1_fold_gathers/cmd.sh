# Session 9 run 1: fold down's act-order permutation (fixture test, in-model A/B), GEMV-level price of each gather.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="cuda_fixture_test" bash $S
grep -E "Fold|FAILED" $OUT/unit.log | head
STAGES="gemv" GEMV_ARGS="--variants warprms:32:0:1;warprms:32:0:2" \
  GEMV_SHAPES="--group 128;--group 128 --act_order;--group 128 --act_order --no_perm down;--group 128 --act_order --no_perm qkv,gate_up;--group 128 --act_order --no_perm o;--group 128 --act_order --no_perm qkv,o,gate_up,down;--group 32;--group 32 --act_order;--group 32 --act_order --no_perm qkv,o,gate_up,down" bash $S >/dev/null
grep -E "^device|layer|=" $OUT/gemv.log
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
BIN=/tmp/llama_gpu/bin
for l in gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True; do
  echo "=== $l --ab fold"; $BIN/llama_bench --model /tmp/llama_gpu/7b/$l --backend cuda --repeat 3 --decode_only --ab "--fold_down_perm;--fold_down_perm --gemv_one_trip_input=2" 2>&1 | sed -n '/^A\/B set/,$p'
done > $OUT/ab.log 2>&1
cat $OUT/ab.log
