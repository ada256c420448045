# Session 14 run 5: decode attention split sizes at short context (the cluster kernel; by
# context the runner takes 32-key splits up to 512 keys): attention costs 7.0 µs per layer in
# the replayed graph (run 3, --skip_ops=2). Same binary as run 4.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
AB="--attn_split_keys=0;--attn_split_keys=64;--attn_split_keys=128;--attn_split_keys=0;--attn_split_keys=64;--attn_split_keys=128"
STAGES="make7b abx" LAYOUTS="main" BENCH_ARGS="--decode_only --repeat 3 --long_context 0" AB_SETS="$AB" bash $S
