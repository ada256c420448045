# Session 18 run 4: the long-context split attention kernel with q / new key / angles copied
# (cp.async) before the zeroing (new binary) against the build before it (llama_bench_before,
# code f27173b), alternating, on main; the faster on-device sampler (sampling_test, sampled
# rows of both binaries); the attention / long-context / fixture tests.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
xz -dc .carry/llama_bench_before.xz > /tmp/llama_gpu/llama_bench_before && chmod +x /tmp/llama_gpu/llama_bench_before
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
date -u +%T
for t in attention_test long_context_test sampling_test cuda_fixture_test; do
  timeout 200 $B/$t > $OUT/unit_$t.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit_$t.log | tail -1)"
done
grep -hE "^\[  FAILED|Failure" $OUT/unit_*.log | head -20
STAGES="make7b" LAYOUTS="main" bash $S >/dev/null
M=/tmp/llama_gpu/7b/main
A="--decode_only --repeat 3 --prefill_fp16_weights=false --temperature 0.6 --top_p 0.9"
for i in 1 2; do
  for bin in /tmp/llama_gpu/llama_bench_before $B/llama_bench; do
    timeout 100 $bin --model $M $A > $OUT/bench_$(basename $bin)_$i.log 2>&1
    echo "$(basename $bin) $i exit $?"; grep -E "tok/s" $OUT/bench_$(basename $bin)_$i.log
  done
done
date -u +%T
