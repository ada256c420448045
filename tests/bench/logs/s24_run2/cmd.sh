# Session 24 run 2 (H200), code 782f46a + the split attention kernel compiled for 3 blocks per
# SM as an option (--attn_split_min_blocks=3: up to 168 registers instead of the 128 cap).
# attention_test (both instantiations bit for bit); same-process A/B at 2048 context on main,
# 128g, 32g; 7B CUDA vs CPU on main and 64g (the layouts not checked in session 23); the
# service stage; timelines of main and 128g at context 128 and 2048 (final code).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
AB="--attn_split_min_blocks=3;--attn_split_min_blocks=4;--attn_split_min_blocks=3;--attn_split_min_blocks=4"
for l in main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True; do
  echo "=== $l" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l $R --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $l exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
STAGES="check7b" LAYOUTS="main gptq-4bit-64g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
STAGES="service" timeout 150 bash $S >/dev/null 2>&1; echo "service exit $?"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "service|llamad|llamactl|generate"
for l in main gptq-4bit-128g-actorder_True; do
  echo "=== $l" >> $OUT/timeline.log
  timeout 100 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 2048 --long_new 32 --repeat 1 --prefill_fp16_weights=false --timeline 32 >> $OUT/timeline.log 2>&1
  echo "timeline $l exit $?"
done
grep -E "^===|context|Attention|step:" $OUT/timeline.log | cut -c1-150
