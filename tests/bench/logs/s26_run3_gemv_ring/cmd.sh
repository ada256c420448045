# Session 26 run 3 (H200): the warp GEMV with its weights through a per-warp TMA ring in
# shared memory (--gemv_ring_stages / --gemv_ring_kb, off by default): gptq_matmul_test (ring
# variants against the float64 reference), cuda_fixture_test (ring vs registers decode), then
# same-process A/B of decode at 128 context on main and 128g (2 x 4 blocks = 4 KB a warp,
# 1 x 8, 4 x 4), 32g with a 1 x 4 ring (its kernel's shared memory leaves no more at 3 blocks/SM).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" UNIT_TESTS="gptq_matmul_test cuda_fixture_test" bash $S >/dev/null
grep -E "FAILED|Failure|PASSED|tests ran|WeightRing" $OUT/unit.log | head -20
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True gptq-4bit-32g-actorder_True" bash $S >/dev/null
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
run() {  # layout, sets
  echo "=== $1" >> $OUT/ab.log
  timeout 150 $B/llama_bench --model /tmp/llama_gpu/7b/$1 $R --ab "$2" >> $OUT/ab.log 2>&1
  echo "ab $1 exit $?"
}
run main "--gemv_ring_stages=2;--gemv_ring_stages=0;--gemv_ring_stages=1 --gemv_ring_kb=8;--gemv_ring_stages=2;--gemv_ring_stages=4;--gemv_ring_stages=0"
run gptq-4bit-128g-actorder_True "--gemv_ring_stages=2;--gemv_ring_stages=0;--gemv_ring_stages=2;--gemv_ring_stages=0"
run gptq-4bit-32g-actorder_True "--gemv_ring_stages=1;--gemv_ring_stages=0;--gemv_ring_stages=1"
grep -E "^===|^\(base|^--|decode" $OUT/ab.log | head -60
