#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotent apt), builds everything
# (incremental) and runs every test with CTest. CUDA tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 -j "${CTEST_JOBS:-2}" "$@"
