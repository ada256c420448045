# Session 35 run 6 (H200): the review finding LoadEightVec (attention_common.cuh) vs two Load4
# calls of vec_load.cuh: the same loads (ld.global.nc.v4.f32), but the head-dim-128 split
# kernel's PTX changes (530 lines), so a decode A/B. head: a1dc02b's build; load4:
# variant_build.sh load4 "-DLOADEIGHT_LOAD4=1" (rope_split_attention.cu recompiled with
# LoadEightVec as Load4(x, a); Load4(x + 4, a + 4)). Alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
STAGES="make7b" LAYOUTS="main gptq-4bit-64g-actorder_True" bash $S >/dev/null
mkdir -p /tmp/load4; xz -dc .carry/load4/llama_bench.xz > /tmp/load4/llama_bench; chmod +x /tmp/load4/llama_bench
for lv in "main:head load4 load4 head" "gptq-4bit-64g-actorder_True:load4 head head load4"; do
  l=${lv%%:*}
  for v in ${lv#*:}; do
    bin=$B/llama_bench; [ $v = load4 ] && bin=/tmp/load4/llama_bench
    timeout 60 $bin --model /tmp/llama_gpu/7b/$l --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0 > $OUT/d.log 2>&1
    echo "== $v $l: $(grep -E 'on-device greedy|rror' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
    (echo "== $v $l"; cat $OUT/d.log) >> $OUT/decode.log
  done
done
rm -f $OUT/d.log $OUT/summary.txt
