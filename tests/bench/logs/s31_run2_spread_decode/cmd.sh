# Session 31 run 2 (H200): decode with the warp GEMV's sets spread over each 8-group period
# (llama_bench built with LLAMA_GEMV_SPREAD=1: single 64-row blocks from 4 parts; 2: pairs from
# 2 halves; default build unchanged), one process per binary, alternating: main twice, 128g,
# 64g (32g's period is one set: nothing to spread). Run 1 had the read-only chain (3:4 33.6 ->
# 30.4-30.7 us a layer) and the variants' gptq_matmul_test; its decode rounds had no checkpoints.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
for v in sp1 sp2; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-128g-actorder_True gptq-4bit-64g-actorder_True main; do
  for v in base sp1 sp2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L:0:14}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L:0:14}_$v.log | tr -s ' ')"
  done
done
