# Session 22 run 1 (H200): what each act-order gather costs today. gemv_bench (one layer of the
# 4 GEMVs, the engine's kernels) with each projection's permutation removed in turn, g128 and
# g32; then the per-kernel timeline of a decode step on main and 128g act-order (same bytes).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for g in 128 32; do
  timeout 60 $B/gemv_bench --group $g --uniform_zeros --variants "warprms:32:0:2:1:7:1:0" >> $OUT/gemv.log 2>&1
  for np in down down,o down,qkv down,gate_up down,qkv,gate_up,o; do
    timeout 60 $B/gemv_bench --group $g --act_order --no_perm $np --uniform_zeros --variants "warprms:32:0:2:1:7:1:1" >> $OUT/gemv.log 2>&1
  done
done
grep -E "^device|layer|^warprms.*(q\||o 4|gate|down)" $OUT/gemv.log
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
for l in main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True; do
  timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 > $OUT/timeline_$l.log 2>&1
  echo "timeline $l exit $?"; grep -E "tok/s|Kernel|step:" $OUT/timeline_$l.log | tail -14
done
