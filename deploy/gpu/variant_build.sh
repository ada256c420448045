#!/usr/bin/env bash
# Builds a variant of some binaries for a device A/B against the default build (a macro in a
# kernel file, as sessions 30-31 measured): recompiles kernels/<src>.cu for each src of $SRCS
# (default: gptq_gemv_warp) with extra nvcc defines into a copy of the build's libkernels.a,
# relinks the targets against that copy and packs them as .carry/NAME/<target>.xz (unpack on
# the device with xz -dc; run beside the default binaries). The build directory must be built
# first (deploy/gpu/prepare_carry.sh); the default objects are not touched.
#   SRCS="gptq_gemv_warp gptq_matmul" deploy/gpu/variant_build.sh NAME "-DMACRO=1" llama_bench gptq_matmul_test
set -euo pipefail
NAME=$1; DEFS=$2; shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT/${BUILD:-build-cuda}"
V=/tmp/variant_$NAME; rm -rf $V; mkdir -p $V
cp kernels/libkernels.a $V/libkernels.a
for src in ${SRCS:-gptq_gemv_warp}; do
  o=kernels/CMakeFiles/kernels.dir/$src.cu.o
  cmd=$(ninja -t commands $o | tail -1)
  cmd=${cmd/-MD -MT $o -MF $o.d/}
  cmd=${cmd/-o $o/-o $V/$src.cu.o}
  cmd=${cmd/-O3 -DNDEBUG/-O3 -DNDEBUG $DEFS}
  eval "$cmd"
  (cd $V && ar r libkernels.a $src.cu.o 2>/dev/null)
done
mkdir -p "$ROOT/.carry/$NAME"
for t in "$@"; do
  path=$(find . -name "$t" -type f -perm -u+x | head -1 | sed 's|^\./||')
  l=$(ninja -t commands "$path" | tail -1)
  l=${l//kernels\/libkernels.a/$V\/libkernels.a}
  l=${l/-o $path /-o $V\/$t }
  eval "$l"
  strip $V/$t
  xz -T2 -6 -c $V/$t > "$ROOT/.carry/$NAME/$t.xz"
done
ls -la "$ROOT/.carry/$NAME"
