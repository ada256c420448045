# Session 27 run 5 (H200): 891c016 + PickSplits giving the split kernel (rope_split_attention
# 2) 64-key splits at short context (run 4: with --attn_split_keys=64, main 752.2 against
# 750.5 / 749.7, 128g 732.2 against 727.9 / 725.9). The fixture tests (they cover mode 2),
# then same-process A/B, alternating, mode 2 against the default (1) on all four layouts at
# 128 and 2048 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -8
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128"
AB="--rope_split_attention=2;--rope_split_attention=1;--rope_split_attention=2"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
  grep -E "^===|^\(base|^--" $OUT/ab.log | tail -4
done
