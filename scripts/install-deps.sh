#!/usr/bin/env bash
# Installs nnc's build and test dependencies from Debian 12 packages.
# Idempotent: does nothing (and prints nothing) when everything is already there.
set -euo pipefail
pkgs=(cmake g++ make llvm-19-dev libfmt-dev catch2 libbenchmark-dev zlib1g-dev
      dataset-fashion-mnist clang-19 libclang-rt-19-dev python3 libopenblas-dev chromium
      libonnx-dev libprotobuf-dev libonnx-testdata)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "nnc: installing ${missing[*]}" >&2
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
