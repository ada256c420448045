# Session 18 run 5: how long the on-device sampling kernel (SampleAdvanceKernel, radix-select
# version 08bcfbc) takes inside the sampled decode (ncu, graph nodes, 4 launches each), at
# T 0.6 top-p 0.9, T 0.8 top-k 40 top-p 0.95, T 0.6 without cuts; main.
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p $OUT /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
B=/tmp/llama_gpu/bin
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
export LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
STAGES="make7b" LAYOUTS="main" bash deploy/gpu/run_gpu_suite.sh >/dev/null
M=/tmp/llama_gpu/7b/main
i=0
for set in "--temperature 0.6 --top_p 0.9" "--temperature 0.8 --top_k 40 --top_p 0.95" "--temperature 0.6"; do
  i=$((i+1))
  timeout 120 ncu --graph-profiling node -k regex:SampleAdvance --launch-skip 8 --launch-count 4 --section SpeedOfLight \
    $B/llama_bench --model $M --decode_only --long_context 0 --repeat 1 --new_tokens 16 --prefill_fp16_weights=false $set \
    > $OUT/ncu_$i.txt 2>&1
  echo "set '$set' exit $?"; grep -E "Duration|SampleAdvance" $OUT/ncu_$i.txt | head -10
done
