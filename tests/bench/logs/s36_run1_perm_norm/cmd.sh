# Session 36 run 1 (H200): the act-order row gather reading its unit's slice of the RMSNorm
# weights in stored order (GptqSegment::perm_norm, uploaded per act-order segment) instead of
# the whole norm vector (16 KB a block). new: the working tree's build (prepare_carry.sh);
# full: variant_build.sh full "-DLLAMA_AB_FULL_NORM=1" llama_bench (gptq_gemv_warp.cu with
# the old row staging, row x norm; its PTX equals the head's but for parameter offsets).
# Unit tests on new first, then alternating decode processes per act-order layout.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test attention_test long_context_test small_kernels_test" bash $S
STAGES="make7b" LAYOUTS="gptq-4bit-64g-actorder_True gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
mkdir -p /tmp/full; xz -dc .carry/full/llama_bench.xz > /tmp/full/llama_bench; chmod +x /tmp/full/llama_bench
for lv in "gptq-4bit-64g-actorder_True:full new new full" "gptq-4bit-32g-actorder_True:new full full new" "gptq-4bit-128g-actorder_True:full new new full"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v = full ] && bin=/tmp/full/llama_bench
    timeout 60 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log
