# Session 19: the service stage on the GPU, now that prepare_carry.sh packs the service
# libraries (lib-svc.tar.xz) and the carry fits 64 MiB: llamad --backend=cuda fetches two
# fixture branches from the local test hub, llamactl generates from each (must equal the
# fixtures' greedy reference), SIGTERM exits 0; llamactl run --backend=cuda on both.
export OUT=${OUT:-/tmp/gpu_out}
STAGES="service" bash deploy/gpu/run_gpu_suite.sh >/dev/null 2>&1
cat $OUT/summary.txt
