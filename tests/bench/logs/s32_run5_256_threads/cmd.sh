# Session 32 run 5 (H200): on run 3's kernel, the split attention kernel with 256 threads a
# block and 4 rows of K/V a thread (t256: LLAMA_ATTN_THREADS=256, LLAMA_ATTN_ROWS=4,
# LLAMA_ATTN_MIN_BLOCKS=2; a tile still 64 keys, each warp half the instructions of a tile,
# two warps per scheduler; variant.diff, never committed), and run 4's mb3 (3 blocks per SM,
# no spill) at 2048 context too (session 24 found 3 blocks per SM 10% slower there).
# Decode 128 + 256 and 64 tokens at 2048 context after its prefill, alternating processes.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="t256 mb3"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 2048 --long_new 64"
for v in new t256 mb3 new t256; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R > $OUT/d.log 2>&1
  echo "== $v: $(grep -E 'on-device greedy|decode at' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
  (echo "== $v"; cat $OUT/d.log) >> $OUT/decode.log
done
rm -f $OUT/d.log $OUT/summary.txt
