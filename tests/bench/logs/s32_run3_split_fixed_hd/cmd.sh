# Session 32 run 3 (H200): the split attention kernel with the head dimension fixed at 128
# (RopeSplitAttentionKernel<.., 128>: its row-group loops and shuffle reductions unrolled) and
# q / the new key / the RoPE angles in 16-byte loads issued at once (angles before the wait).
# Binaries: new (the build of this commit), base (llama_bench of e5539d2), v0 (the head
# dimension fixed, the loads as before: LLAMA_ATTN_EARLY_VEC=0), va (the angles loaded after
# the wait with q: LLAMA_ATTN_ANGLES_EARLY=0). attention_test + long_context_test first (the
# new instantiation against the RoPE-then-attention kernels and the float64 reference), then
# decode 128 + 256 alternating processes, each with --ab "--attn_clock".
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
/usr/local/cuda/bin/cuobjdump -sass .carry/rope_split_attention.cu.o 2>&1 | xz -6 > $OUT/sass_rope_split_attention.txt.xz
V="base v0 va"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
for t in attention_test long_context_test; do
  $B/$t > $OUT/t.log 2>&1; echo "$t exit $?: $(grep -E '^\[  (PASSED|FAILED)|FAILED  \]' $OUT/t.log | head -8 | tr '\n' ' ')"
  cat $OUT/t.log >> $OUT/tests.log
done
rm -f $OUT/t.log
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0"
for v in base new v0 va new base; do
  bin=$B/llama_bench; [ $v != new ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R --ab "--attn_clock" > $OUT/d.log 2>&1
  echo "== $v: $(grep -E '^\(base\)|^--attn_clock' $OUT/d.log | tr -s ' ' | tr '\n' '|')"
  grep -E 'attention clock|reach the merge' $OUT/d.log | cut -c1-420
  (echo "== $v"; cat $OUT/d.log) >> $OUT/decode.log
done
rm -f $OUT/d.log $OUT/summary.txt
