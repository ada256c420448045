# Session 16 run 4: the warp GEMV copies each warp's second set of weight loads to shared
# memory (cp.async) before the PDL wait as well (llama_bench --gemv_pre_smem,
# GemvTuning::warp_pre_smem): kernel and fixture tests, decode A/B on main and 32g, the
# default path against the build before the change (.carry/llama_bench_before.xz: run 3's
# build, whose default path is d69cbc1's), timeline.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
xz -dc .carry/llama_bench_before.xz > $B/llama_bench_before && chmod +x $B/llama_bench_before
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
for t in gptq_matmul_test cuda_fixture_test; do
  $B/$t >> $OUT/unit.log 2>&1; echo "$t exit $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/unit.log | tail -1)"
done
grep -E "Failure|FAILED|Which is|trace" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
M=/tmp/llama_gpu/7b
A="--decode_only --repeat 3 --prefill_fp16_weights=false"
timeout 200 $B/llama_bench --model $M/main $A --ab "--gemv_pre_smem;--gemv_pre_smem=false;--gemv_pre_smem" > $OUT/ab_main.log 2>&1
echo "ab main exit $?"; grep -A5 "^A/B set" $OUT/ab_main.log
timeout 150 $B/llama_bench --model $M/gptq-4bit-32g-actorder_True $A --ab "--gemv_pre_smem;--gemv_pre_smem=false" > $OUT/ab_32g.log 2>&1
echo "ab 32g exit $?"; grep -A4 "^A/B set" $OUT/ab_32g.log
for b in llama_bench_before llama_bench; do
  echo "== $b" >> $OUT/before.log; timeout 60 $B/$b --model $M/main $A --long_context 0 >> $OUT/before.log 2>&1
  echo "$b: $(grep 'on-device greedy' $OUT/before.log | tail -1)"
done
timeout 120 $B/llama_bench --model $M/main $A --long_context 0 --timeline 32 --ab "--gemv_pre_smem" > $OUT/timeline.log 2>&1
echo "timeline exit $?"; grep -E "^\(base\)|^--|Kernel|step:" $OUT/timeline.log
