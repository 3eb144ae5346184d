#!/usr/bin/env bash
# Runs nnc's libFuzzer targets, each for SECONDS, two at a time, from their
# seeds (tests/data, tests/fuzz/seeds/<target>) into a working corpus under
# $NNC_FUZZ_CORPUS (default /tmp/nnc-fuzz/<target>; the seeds are only read).
# A finding (crash, sanitizer report, leak, OOM, timeout) leaves its input
# in $NNC_FUZZ_CORPUS/<target>-findings and makes the script fail.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]   (default: all seven)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_idx fuzz_npy fuzz_npz fuzz_checkpoint fuzz_image fuzz_frontend fuzz_onnx)
work=${NNC_FUZZ_CORPUS:-/tmp/nnc-fuzz}

seeds() {
  case $1 in
    fuzz_idx) echo tests/data/datasets/idx tests/fuzz/seeds/idx ;;
    fuzz_npy) echo tests/data/datasets/npy tests/fuzz/seeds/npy ;;
    fuzz_npz) echo tests/data/datasets/npz tests/fuzz/seeds/npz ;;
    fuzz_checkpoint) echo tests/fuzz/seeds/checkpoint ;;
    fuzz_image) echo tests/data/datasets/png tests/data/datasets/pnm tests/data/datasets/images tests/fuzz/seeds/image ;;
    fuzz_frontend) echo examples tests/fuzz/seeds/frontend ;;
    fuzz_onnx) echo tests/data/onnx/bad tests/fuzz/seeds/onnx ;;
  esac
}

run_one() {
  local t=$1 bin=$build/tests/fuzz/$1
  local corpus=$work/$t findings=$work/$t-findings
  mkdir -p "$corpus" "$findings"
  local dirs=()
  for d in $(seeds "$t"); do [ -d "$d" ] && dirs+=("$d"); done
  # The top-level .npy/.npz fixtures are seeds of those two readers.
  case $t in
    fuzz_npy) cp tests/data/*.npy "$corpus"/ ;;
    fuzz_npz) cp tests/data/*.npz "$corpus"/ ;;
  esac
  local extra=()
  [ "$t" = fuzz_frontend ] && extra=(-max_len=4096)
  nice -n 19 "$bin" "$corpus" "${dirs[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$findings/" -print_final_stats=1 "${extra[@]}" > "$work/$t.log" 2>&1
  local rc=$?
  local runs corp
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$t.log")
  corp=$(ls "$corpus" | wc -l)
  echo "$t: ${seconds}s, ${runs:-?} executions, corpus $corp files, exit $rc (log $work/$t.log)"
  [ $rc -eq 0 ] || { grep -m3 -E "ERROR|runtime error|Test unit written" "$work/$t.log"; return 1; }
}

status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run_one "${targets[i]}" & a=$!
  b=
  if ((i + 1 < ${#targets[@]})); then run_one "${targets[i + 1]}" & b=$!; fi
  wait $a || status=1
  [ -z "$b" ] || wait $b || status=1
done
exit $status
