# Session 23 run 5 (H200): act-order o_proj input written in o_proj's order by the decode
# attention kernels' cluster merge (CudaOptions::attn_out_perm, kernels out_perm: the inverse
# of o_proj's permutation), so that o_proj stages its input in order instead of gathering it
# (s23_final's timeline: o_proj adds 5.38 us a layer on 128g vs 4.35 on main). Unit tests of
# the attention kernels (out_perm scatter checked bit for bit) and the fixtures (act-order
# branches decode through it), same-process A/B per act-order layout (128g also at 2048
# context), 7B CUDA vs CPU on 128g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="attention_test cuda_fixture_test long_context_test" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-100
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false"
AB="--attn_out_perm=false;--attn_out_perm;--attn_out_perm=false;--attn_out_perm"
for lx in "gptq-4bit-128g-actorder_True 2048" "gptq-4bit-32g-actorder_True 0" "gptq-4bit-64g-actorder_True 0"; do
  set -- $lx
  echo "=== $1 (long context $2)" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$1 $R --long_context $2 --long_new 64 --ab "$AB" >> $OUT/ab.log 2>&1
  echo "ab $1 exit $?"
done
grep -E "^===|^\(base|^--" $OUT/ab.log
STAGES="check7b" LAYOUTS="gptq-4bit-128g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
