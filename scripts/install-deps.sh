#!/usr/bin/env bash
# Installs nnc's build and test dependencies from Debian 12 packages.
# Idempotent: does nothing (and prints nothing) when everything is already there.
set -euo pipefail
pkgs=(cmake g++ make llvm-19-dev libfmt-dev catch2 libbenchmark-dev zlib1g-dev
      dataset-fashion-mnist clang-19 libclang-rt-19-dev python3 libopenblas-dev chromium
      libonnx-dev libprotobuf-dev libonnx-testdata fortunes openmpi-bin libopenmpi-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "nnc: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime (CPU), the independent runtime tests/test_onnx_export.cpp runs
# exported models through (scripts/ort_run.js). Not in Debian: npm's
# onnxruntime-node bundles its .so, so --ignore-scripts (no download at
# install time) is enough. Outside the repository, in NNC_ORT_DIR; skipped
# when present, or when there is no npm (those tests then skip with a WARN).
ort_dir="${NNC_ORT_DIR:-/opt/nnc-ort}"
if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
  echo "nnc: installing onnxruntime-node into $ort_dir" >&2
  sudo=""; [ -w "$(dirname "$ort_dir")" ] || sudo="sudo"
  $sudo npm install --silent --prefix "$ort_dir" --ignore-scripts onnxruntime-node@1.17 >/dev/null
fi
