# Session 22 run 2 (H200): the shared-memory carve-out. Act-order layers run q|k|v and gate|up
# with 16 KB more shared memory than o and down (the row gather); if kernels that need another
# L1 / shared split cannot share an SM, PDL overlap is lost at those boundaries. A/B in one
# process: one carve-out hint for every launch (--launch_carveout), and 16 KB of unused shared
# memory added to every warp-GEMV launch on main (--gemv_extra_smem).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false"
timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/main $R --ab "--launch_carveout=100;--gemv_extra_smem=16384;--launch_carveout=86;--launch_carveout=100" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -E "^\(base|^--" $OUT/ab_main.log
timeout 120 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True $R --ab "--launch_carveout=100;--launch_carveout=86;--launch_carveout=100" > $OUT/ab_128g.log 2>&1
echo "ab 128g exit $?"; grep -E "^\(base|^--" $OUT/ab_128g.log
timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True $R --ab "--launch_carveout=100;--launch_carveout=100" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -E "^\(base|^--" $OUT/ab_32g.log
timeout 90 $B/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-128g-actorder_True --decode_only --long_context 0 --repeat 1 --prefill_fp16_weights=false --timeline 32 --ab "--launch_carveout=100" > $OUT/timeline_128g.log 2>&1
echo "timeline exit $?"; grep -E "^\(base|^--|Kernel|step:" $OUT/timeline_128g.log
