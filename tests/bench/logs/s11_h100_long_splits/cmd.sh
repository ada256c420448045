# Session 11 H100: attn_long_splits (about N splits past 1024 keys) on 32g at 2048 context.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S > /dev/null
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
/tmp/llama_gpu/bin/llama_bench --model /tmp/llama_gpu/7b/gptq-4bit-32g-actorder_True --backend cuda --repeat 3 --decode_only --new_tokens 32 --ab "--attn_long_splits=12;--attn_long_splits=16;--attn_long_splits=10;--attn_long_splits=12;--attn_long_splits=16;--attn_long_splits=10" 2>&1 | sed -n '/^A\/B set/,$p' | tee $OUT/ab.log
nvidia-smi --query-gpu=name --format=csv,noheader
