# Session 35 run 5 (H200): the review finding of sessions 32-34, the split attention kernel's
# two copies of the reload when positions are not final (the head-dim-128 instantiation's
# before its q loads, the generic one's after the zeroing), now one block right after the PDL
# wait for both. ptx_diff.sh: the head-dim-128 instantiations' PTX is the same; the generic
# ones' (every head dim but 128, the fixtures' included) changed, so their correctness here.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="attention_test long_context_test cuda_fixture_test small_kernels_test" bash $S | tail -6
grep -E "tests from .* ran|PASSED|FAILED" $OUT/unit.log
rm -f $OUT/summary.txt
