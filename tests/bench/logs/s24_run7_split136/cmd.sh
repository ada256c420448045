# Session 24 run 7 (H200), run 2's binaries (default = code 782f46a). 16 splits of 136 keys at
# 2048 context (--attn_split_keys=136: need = 16 splits, a power of two, merged in a 16-block
# cluster; two full 64-key tiles and one of 8 rows) against the default 11-12 splits of 192
# keys; same process, main. (At 128 context that flag also moves decode off the cluster
# kernel: ignore that column.)
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
AB="--attn_split_keys=136;--attn_split_keys=0;--attn_split_keys=136;--attn_split_keys=0"
echo "=== main" >> $OUT/ab.log
timeout 170 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "$AB" >> $OUT/ab.log 2>&1
echo "ab main exit $?"
grep -E "^===|^\(base|^--" $OUT/ab.log
