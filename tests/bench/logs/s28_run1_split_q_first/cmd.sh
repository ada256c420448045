# Session 28 run 1 (H200), code 8abae94: session 27's prepared --attn_split_q_first (the split
# attention kernel, the decode default, in the cluster kernel's order of work: RoPE angles
# before the PDL wait, q and the new key loaded together first, the zeroing after the push).
# Its tests first (attention_test, long_context_test, cuda_fixture_test), then same-process
# A/B, alternating, on all four layouts at 128 and 2048 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="attention_test long_context_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran" $OUT/unit.log | head -12
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 128"
AB="--attn_split_q_first;--attn_split_q_first=false;--attn_split_q_first"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1; echo "ab $l exit $?"
  grep -E "^===|^\(base|^--" $OUT/ab.log | tail -4
done
