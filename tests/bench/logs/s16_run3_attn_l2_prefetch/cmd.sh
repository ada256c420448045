# Session 16 run 3: decode attention asks L2 for the tail of each K unit of the layer's
# gate|up weights before its PDL wait (llama_bench --attn_l2_prefetch PCT,
# CudaOptions::attn_l2_prefetch_pct): decode A/B on main and 32g, timeline.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
timeout 280 $B/llama_bench --model $M/main $A --ab "--attn_l2_prefetch=50;--attn_l2_prefetch=25;--attn_l2_prefetch=75;--attn_l2_prefetch=100;--attn_l2_prefetch=0;--attn_l2_prefetch=50" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A8 "^A/B set" $OUT/ab_main.log
timeout 150 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--attn_l2_prefetch=50;--attn_l2_prefetch=0" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A4 "^A/B set" $OUT/ab_32g.log
timeout 120 $B/llama_bench --model $M/main $A --long_context 0 --timeline 32 --ab "--attn_l2_prefetch=50" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:" $OUT/timeline.log
