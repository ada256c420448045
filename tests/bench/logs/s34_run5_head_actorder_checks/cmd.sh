# Session 34 run 5 (H200): the correctness checks session 33 left unrun on the act-order
# kernel's trigger at the first line: the committed code (8c50573 = 3b9a0be's code) built
# here, cuda_fixture_test, gptq_matmul_test, and 7B CUDA vs CPU on 32g.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="unit" UNIT_TESTS="cuda_fixture_test gptq_matmul_test" bash $S | tail -3
STAGES="make7b check7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S | tail -4
