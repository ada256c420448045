# Session 30 run 4 (H200): the flavor of the weight stream's 16-byte loads, never varied before.
# Default ld.global.cs (__ldcs, evict-first); v1 ld.global.nc.L1::no_allocate; v2 the same with
# the L2::256B prefetch hint (LLAMA_STREAM_LOAD in kernels/vec_load.cuh, a build macro; the
# warp GEMV and sol_bench's read-only stream take it; their tests not carried: the carry limit).
# The read-only chain at the GEMV's 3:4 and at 4:4, then decode at 128 context, one process per
# binary, alternating (main twice, 128g once).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="" bash $S >/dev/null
for v in v1 v2; do mkdir -p /tmp/$v; for f in llama_bench sol_bench; do
  xz -dc .carry/$v/$f.xz > /tmp/$v/$f; chmod +x /tmp/$v/$f; done; done
C="3:4:1:1;4:4:1:1"
for v in base v1 v2; do
  bin=$B/sol_bench; [ $v != base ] && bin=/tmp/$v/sol_bench
  timeout 100 $bin --repeat 30 --spread_layer -1 --configs "$C" > $OUT/sol_$v.log 2>&1; echo "sol $v exit $?"
  grep -E "chain|layer " $OUT/sol_$v.log | grep -v "µs from" | sed "s/^/$v /"
done
STAGES="make7b" LAYOUTS="main gptq-4bit-128g-actorder_True" bash $S >/dev/null
R="--decode_only --repeat 3 --prefill_fp16_weights=false --long_context 0"
for L in main gptq-4bit-128g-actorder_True main; do
  for v in base v1 v2; do
    bin=$B/llama_bench; [ $v != base ] && bin=/tmp/$v/llama_bench
    timeout 90 $bin --model /tmp/llama_gpu/7b/$L $R > $OUT/dec_${L}_$v.log 2>&1
    echo "$L $v $(grep -E 'on-device greedy' $OUT/dec_${L}_$v.log | tr -s ' ')"
  done
done
