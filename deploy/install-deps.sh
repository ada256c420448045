#!/usr/bin/env bash
# Installs the Debian packages the project builds and tests with. Idempotent: does
# nothing when every package is already installed.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libabsl-dev libcurl4-openssl-dev libssl-dev libsentencepiece-dev nlohmann-json3-dev
      libcpp-httplib-dev libgtest-dev libgmock-dev
      python3 python3-grpcio python3-protobuf curl ca-certificates openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
