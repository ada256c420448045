# Session 14 run 6: the read-only kernels' test (every word read once: XOR against the host's,
# now one atomic per warp into the sink) and sol_bench again with that sink.
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
$B/small_kernels_test > $OUT/unit.log 2>&1; echo "small_kernels_test exit $?"
grep -E "^\[  (PASSED|FAILED|  OK|RUN)|Failure" -A2 $OUT/unit.log | grep -E "ReadStream|PASSED|FAILED|Failure" -A2 | head
$B/sol_bench --configs "2:4:1:1;4:4:1:1" --repeat 10 2>&1 | tee $OUT/sol.log
