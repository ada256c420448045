# Session 14 run 1: the speed of light of the decode weight stream (sol_bench: read-only
# kernels, same bytes and boundaries as the GEMV chain), the real GEMV layer for comparison,
# and the SM clock / power under sustained prefill (nvidia-smi at 20 ms).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT
mkdir -p /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz  # (STAGES="" would run the default stages)
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
$B/sol_bench --group 128 > $OUT/sol.log 2>&1
$B/sol_bench --group 128 --attn_mb 2.1 --configs "2:4:1:1;3:4:1:1" >> $OUT/sol.log 2>&1
$B/sol_bench --group 32 --configs "2:4:1:1;3:4:1:1;2:8:1:1" >> $OUT/sol.log 2>&1
$B/gemv_bench --group 128 --uniform_zeros --variants "warprms:32:0:2:1:7" > $OUT/gemv.log 2>&1
$B/gemv_bench --group 32 --act_order --no_perm down --uniform_zeros --variants "warprms:32:0:2:1:7" >> $OUT/gemv.log 2>&1
cat $OUT/sol.log; grep -E "device|layer" $OUT/gemv.log
STAGES="make7b" LAYOUTS="main" bash $S
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 20 > $OUT/smi.csv 2>&1 &
SMI=$!
date -u +%T.%N > $OUT/marks.txt
$B/llama_bench --model /tmp/llama_gpu/7b/main --backend cuda --repeat 30 --long_context 0 --new_tokens 64 > $OUT/bench_clock.log 2>&1
date -u +%T.%N >> $OUT/marks.txt
kill $SMI
cat $OUT/marks.txt; grep -E "loaded|tok/s|first token" $OUT/bench_clock.log
# SM clock and power over the run, per second
awk -F', ' 'NR>1 {split($1,a," "); t=a[2]; sub(/\..*/,"",t); print t, $2, $4}' $OUT/smi.csv | awk '{k=$1; c[k]+=$2; p[k]+=$4; n[k]++} END {for (k in c) printf "%s %6.0f MHz %6.0f W %d\n", k, c[k]/n[k], p[k]/n[k], n[k]}' | sort | tail -40
