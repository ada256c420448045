# Session 30 run 6 (H200): session 14's 4 blocks per SM for the warp GEMV (lost -18% then) on
# today's kernel (group slots, one-trip staging, o_proj's own units): at 64 registers main's
# kernel spills 8 bytes (ptxas), session 14's 8-40. A build with __launch_bounds__(256, 4)
# (b4/, patch bps4.patch): decode on main at 128 context: default
# binary, the 4-blocks binary with the default units and with units aimed at 396 blocks (q|k|v
# 480, gate|up 516, down 416: one wave at 4 a SM) and o_proj at 512, default binary again;
# then the 4-blocks build's gptq_matmul_test.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
mkdir -p /tmp/b4; for f in llama_bench gptq_matmul_test; do xz -dc .carry/b4/$f.xz > /tmp/b4/$f; chmod +x /tmp/b4/$f; done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main $R > $OUT/dec_base1.log 2>&1
echo "base $(grep -E 'on-device greedy' $OUT/dec_base1.log | tr -s ' ')"
timeout 120 /tmp/b4/llama_bench --model /tmp/llama_gpu/7b/main $R \
  --ab "--gemv_warp_target_blocks=396;--gemv_warp_target_blocks=396 --o_gemv_target_blocks=512;--gemv_warp_target_blocks=0" > $OUT/ab_b4.log 2>&1
grep -E "^\(base|^--" $OUT/ab_b4.log | sed 's/^/b4 /'
timeout 60 $B/llama_bench --model /tmp/llama_gpu/7b/main $R > $OUT/dec_base2.log 2>&1
echo "base $(grep -E 'on-device greedy' $OUT/dec_base2.log | tr -s ' ')"
timeout 120 /tmp/b4/gptq_matmul_test > $OUT/unit_b4.log 2>&1; echo "b4 test exit $?"; grep -E "FAILED|PASSED" $OUT/unit_b4.log | head -3
