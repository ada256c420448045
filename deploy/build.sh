#!/usr/bin/env bash
# Configures and builds everything into ./build (incremental). CUDA code is built for
# sm_90 when nvcc is found at /usr/local/cuda; set LLAMA_CUDA=OFF to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DLLAMA_CUDA="${LLAMA_CUDA:-AUTO}"
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
