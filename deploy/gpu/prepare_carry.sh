#!/usr/bin/env bash
# Prepares .carry/ (git-ignored) for deploy/gpu/run_gpu_suite.sh on the GPU machine: the CUDA
# test binaries, llama_bench and make_checkpoint built here for sm_90, the non-system shared
# libraries they need (the GPU machine has CUDA/cuBLAS but not abseil or sentencepiece), and a
# copy of the fixtures (../shared is not sent to the GPU machine).
#   deploy/gpu/prepare_carry.sh [build-dir]      then: device run with carry [".carry"]
set -euo pipefail
BUILD=${1:-build-cuda}
TARGETS="small_kernels_test sampling_test gptq_matmul_test attention_test cuda_fixture_test cuda_errors_test long_context_test synthetic_7b_test llama_bench make_checkpoint gemv_bench gemm_bench sol_bench"
SERVICE_TARGETS="llamad llamactl"  # the service stage: llamad --backend=cuda end to end
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 $TARGETS $SERVICE_TARGETS
rm -rf .carry/bin .carry/bin.tar.xz .carry/lib .carry/lib-svc .carry/lib-svc.tar.xz .carry/fixtures
mkdir -p .carry/bin .carry/lib .carry/lib-svc
for t in $TARGETS $SERVICE_TARGETS; do cp "$(find "$BUILD" -type f -name "$t" -perm -u+x | head -1)" .carry/bin/; done
strip .carry/bin/*
ldd .carry/bin/* | awk '$3 ~ /libabsl|libsentencepiece|libprotobuf|libcupti/ {print $3}' | sort -u | xargs -I{} cp -L {} .carry/lib/
# The service binaries also need gRPC, libcurl and their dependencies: every non-base Debian
# library, kept apart (lib-svc/) so that only llamad / llamactl load them, not the
# device's own python3 or tools.
for t in $SERVICE_TARGETS; do ldd ".carry/bin/$t"; done |
  awk '$3 ~ /^\/(usr\/)?lib\/x86_64-linux-gnu\// {print $3}' |
  grep -Ev '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-x86-64)\.so' |
  grep -Ev 'libabsl|libsentencepiece|libprotobuf' | sort -u | xargs -I{} cp -L {} .carry/lib-svc/
cp -r "${LLAMA_FIXTURES_DIR:-../shared/fixtures}" .carry/fixtures && chmod -R u+w .carry/fixtures
# The binaries carry every kernel's device code (~55 MB stripped) and the service libraries
# are ~26 MB: packed, they keep the working tree under the device tool's 64 MiB (with lib-svc
# unpacked it was ~70 MB, and the service stage could not be carried); run_gpu_suite.sh
# unpacks them.
tar -C .carry -cf - bin | xz -T2 -6 >.carry/bin.tar.xz && rm -rf .carry/bin
tar -C .carry -cf - lib-svc | xz -T2 -6 >.carry/lib-svc.tar.xz && rm -rf .carry/lib-svc
du -sh .carry
