#!/usr/bin/env bash
# ctest's "mpi: nnc run ..." tests: `nnc run` under mpirun (loopback only,
# shared memory, pml ob1, oversubscribed), each run bounded by timeout.
#   run_test.sh NNC COMPARE MODE
#     equal     1 process, 2 ranks and 3 ranks (an uneven split) twice each:
#               the same losses and params within fp32 tolerance, and two
#               runs on the same N bit for bit
#     mismatch  a rank given another model (MPMD) is refused, named
#     kill      rank 1 killed with SIGKILL after epoch 1: the job stops within
#               seconds naming it; the checkpoint resumes on 1 process
set -uo pipefail
nnc=$1 compare=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)
model=$here/dp_convnet.nn
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under ASan, LeakSanitizer stays off for these processes alone: Open MPI
# keeps allocations until exit that MPI_Finalize never frees, in plugins
# whose frames do not symbolize (so no suppression matches them). nnc's own
# code here is dist/world.cpp; everything else the runs execute is leak
# checked by the single-process tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
mpi=(mpirun --oversubscribe --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none
     --mca oob_tcp_if_include lo)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(run "$model" --threads 1 --limit 640 --test-limit 500 --log-every 1 --quiet)

fail() { echo "FAILED: $*"; exit 1; }

case "$mode" in
equal)
  timeout 120 "$nnc" "${run[@]}" --save "$work/one" || fail "1 process"
  for np in 2 3; do
    timeout 120 "${mpi[@]}" -np $np "$nnc" "${run[@]}" --save "$work/np$np" || fail "$np ranks"
  done
  for np in 2 3; do
    timeout 120 "${mpi[@]}" -np $np "$nnc" "${run[@]}" --save "$work/np${np}again" || fail "$np ranks again"
  done
  # fp32 sums in another order, through 40 Adam steps.
  "$compare" "$work/np2" "$work/one" close 1e-3 1e-5 || fail "2 ranks against 1 process"
  "$compare" "$work/np3" "$work/one" close 1e-3 1e-5 || fail "3 ranks against 1 process"
  "$compare" "$work/np2" "$work/np2again" same || fail "2 ranks twice"
  "$compare" "$work/np3" "$work/np3again" same || fail "3 ranks twice"
  # Dropout: each rank's masks its own, and the same run after run.
  drop=(run "$here/../../examples/overfitting/dropout_adam.nn" --threads 1 --limit 1000 --test-limit 200
        --iterations 30 --quiet)
  for k in 1 2; do
    timeout 120 "${mpi[@]}" -np 2 "$nnc" "${drop[@]}" --save "$work/drop$k" || fail "dropout on 2 ranks"
  done
  "$compare" "$work/drop1" "$work/drop2" same || fail "dropout on 2 ranks twice"
  ;;
mismatch)
  sed 's/lr = 0.002/lr = 0.003/' "$model" >"$work/other.nn"
  out=$(timeout 60 "${mpi[@]}" -np 1 "$nnc" "${run[@]}" : -np 1 "$nnc" run "$work/other.nn" --threads 1 --limit 640 \
        --quiet 2>&1)
  rc=$?
  echo "$out"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "exit $rc"
  grep -q "rank 1: .*the ranks disagree on the model and its training.*rank(s) 1 differ from rank 0" <<<"$out" ||
    fail "the model mismatch is not named"
  # Rank 1's data: the same files, train and test swapped.
  fm=/usr/share/datasets/fashion-mnist
  mkdir "$work/swapped"
  for f in images-idx3 labels-idx1; do
    ln -s "$fm/t10k-$f-ubyte.gz" "$work/swapped/train-$f-ubyte.gz"
    ln -s "$fm/train-$f-ubyte.gz" "$work/swapped/t10k-$f-ubyte.gz"
  done
  out=$(timeout 60 "${mpi[@]}" -np 1 "$nnc" "${run[@]}" : -np 1 "$nnc" "${run[@]}" --data "$work/swapped" 2>&1)
  rc=$?
  echo "$out"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "exit $rc"
  grep -q "rank 1: .*the ranks disagree on the data.*rank(s) 1 differ from rank 0" <<<"$out" ||
    fail "the data mismatch is not named"
  ;;
kill)
  start=$(date +%s)
  timeout 120 "${mpi[@]}" -np 2 "$nnc" "${run[@]}" --epochs 30 --save "$work/ck" >"$work/out" 2>&1 &
  job=$!
  for _ in $(seq 600); do [ -f "$work/ck/checkpoint.json" ] && break; sleep 0.1; done
  [ -f "$work/ck/checkpoint.json" ] || fail "no checkpoint after epoch 1"
  victim=""
  # Only this test's processes: another mpi test may be running dp_convnet too.
  for p in $(pgrep -f -- "--save $work/ck"); do
    grep -qz '^OMPI_COMM_WORLD_RANK=1$' /proc/$p/environ 2>/dev/null && victim=$p
  done
  [ -n "$victim" ] || fail "no rank 1 process"
  killed=$(date +%s%N)
  kill -9 "$victim"
  wait $job
  rc=$?
  took=$(( ($(date +%s%N) - killed) / 1000000 ))
  cat "$work/out"
  echo "the job ended ${took} ms after the kill (rc $rc)"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "exit $rc"
  grep -Eq "rank 1 .*(exited on signal 9|Killed)|another rank has stopped" "$work/out" || fail "rank 1 not named"
  [ $took -lt 20000 ] || fail "took ${took} ms"
  # The last checkpoint (written atomically, whatever the kill interrupted)
  # continues on one process, one epoch further.
  saved=$(grep -o '"epoch": [0-9]*' "$work/ck/checkpoint.json" | grep -o '[0-9]*$')
  out=$(timeout 120 "$nnc" "${run[@]}" --epochs $((saved + 1)) --resume "$work/ck" --save "$work/ck" 2>&1) ||
    fail "resume on 1 process: $out"
  echo "$out"
  grep -q "^epoch $((saved + 1)): " <<<"$out" || fail "the resumed run did not train epoch $((saved + 1))"
  ;;
esac
echo "ok"
