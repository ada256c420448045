# Session 32 run 2 (H200): what each phase of the split attention kernel costs a decode step.
# Diagnosis variants (build macro LLAMA_ATTN_ABLATE, never committed; attn_ablate.patch here),
# outputs garbage: bit 1 no zeroing of the later GEMVs' outputs, 2 no K/V loads, 4 no q / new
# key loads (q constant), 8 no cluster merge (rank 0 writes its own partial), 15 all four.
# zl (LLAMA_ATTN_ZERO_LATE, a real candidate): the zeroing after the partial's push, by every
# rank but 0 (as the cluster kernel), instead of right after the PDL wait.
# Each binary: llama_bench --ab "--attn_clock" (decode 128 + 256, then the clocked kernel).
# Then the split kernel's sm_90 code (cuobjdump of the default object).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
V="a1 a2 a4 a8 a15 zl"
for v in $V; do mkdir -p /tmp/$v; xz -dc .carry/$v/llama_bench.xz > /tmp/$v/llama_bench; chmod +x /tmp/$v/llama_bench; done
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
R="--model /tmp/llama_gpu/7b/main --decode_only --repeat 2 --prefill_fp16_weights=false --long_context 0"
for v in base $V base; do
  bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
  timeout 90 $bin $R --ab "--attn_clock" > $OUT/dec_$v.log 2>&1
  echo "== $v: $(grep -E '^\(base\)|^--attn_clock' $OUT/dec_$v.log | tr -s ' ' | tr '\n' '|')"
  grep -E 'attention clock|reach the merge' $OUT/dec_$v.log | cut -c1-400
done
/usr/local/cuda/bin/cuobjdump -sass .carry/rope_split_attention.cu.o 2>&1 | xz -6 > $OUT/sass_rope_split_attention.txt.xz
ls -la $OUT/sass_rope_split_attention.txt.xz
