# Session 24 run 4 (H200), run 2's binaries (default = code 782f46a). Why are 128g's GEMVs
# 0.5-1.5 us slower at 2048 context than at 128 (run 2's timeline) although q|k|v and gate|up
# follow the same kernels at both? The timeline of 128g again, with nvidia-smi sampling the SM
# and memory clocks, power and throttle reasons every 50 ms.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="gptq-4bit-128g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv -lms 50 > $OUT/smi.csv 2>&1 &
SMI=$!
l=gptq-4bit-128g-actorder_True
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$l --decode_only --long_context 2048 --long_new 64 --repeat 2 --prefill_fp16_weights=false --timeline 32 2>&1 | while IFS= read -r line; do echo "$(date +%H:%M:%S.%N | cut -c1-12) $line"; done > $OUT/timeline.log
kill $SMI
grep -E "context|GptqGemv|Attention|step:|decode" $OUT/timeline.log | cut -c1-175
python3 - "$OUT/smi.csv" <<'PY'
import sys, csv
rows = list(csv.reader(open(sys.argv[1])))
print(rows[0]); n = len(rows)
for r in rows[1::max(1, n // 60)]: print(",".join(x.strip() for x in r))
PY
