# Session 18 run 2: g32 warp-GEMV units of up to 64 groups (--gemv_g32_wide), decode attention
# with its zeroing before the merge (--attn_loads=3) against loads-first (2), the on-device
# sampler (sampling_test, llama_bench --temperature), and the unit tests of all three.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
date -u +%T; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for t in attention_test gptq_matmul_test sampling_test small_kernels_test cuda_fixture_test; do
  timeout 240 $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
grep -E "^\[  FAILED|Failure|error" $OUT/unit.log | head -20
date -u +%T
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
G32=$M/gptq-4bit-32g-actorder_True
timeout 200 $B/llama_bench --model $G32 $A --ab "--gemv_g32_wide;--gemv_g32_wide --attn_loads=2;--gemv_g32_wide --attn_loads=3;--gemv_g32_wide" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A6 "^A/B set" $OUT/ab_32g.log
date -u +%T
timeout 200 $B/llama_bench --model $M/main $A --ab "--attn_loads=2;--attn_loads=3;--attn_loads=0;--attn_loads=3;--attn_loads=2" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A7 "^A/B set" $OUT/ab_main.log
date -u +%T
timeout 100 $B/llama_bench --model $M/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --temperature 0.6 --top_p 0.9 > $OUT/sampled_main.log 2>&1
echo "sampled exit $?"; grep -v "^\[" $OUT/sampled_main.log | tail -8
timeout 100 $B/llama_bench --model $M/main --decode_only --long_context 0 --repeat 3 --prefill_fp16_weights=false --temperature 0.8 --top_k 40 --top_p 0.95 > $OUT/sampled_topk.log 2>&1
echo "sampled topk exit $?"; grep -v "^\[" $OUT/sampled_topk.log | tail -6
date -u +%T
timeout 90 $B/llama_bench --model $G32 $A --long_context 0 --timeline 32 --gemv_g32_wide --attn_loads=3 > $OUT/timeline_32g.log 2>&1
echo "timeline 32g exit $?"; grep -E "^\(base\)|Kernel|step:" $OUT/timeline_32g.log | head -14
$B/gemv_bench --group 32 --act_order --no_perm down --uniform_zeros --variants "warprms:32:0:2:1:7;warprms:32:0:2:1:7:1" > $OUT/gemv.log 2>&1
echo "gemv exit $?"; grep -v "^\[" $OUT/gemv.log
date -u +%T
