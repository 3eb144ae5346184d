#!/usr/bin/env bash
# ctest's "mpi: ..." tests: world_test under mpirun on loopback only (shared
# memory, pml ob1), oversubscribed, as root where needed; bounded by timeout.
#   run.sh WORLD_TEST NP MODE [ARGS...]
set -uo pipefail
test_bin=$1 np=$2; shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under ASan, LeakSanitizer stays off for these processes alone: Open MPI
# keeps allocations until exit that MPI_Finalize never frees, in plugins
# whose frames do not symbolize (so no suppression matches them). nnc's own
# code here is dist/world.cpp; everything else the runs execute is leak
# checked by the single-process tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
mpi=(mpirun --oversubscribe -np "$np" --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none
     --mca oob_tcp_if_include lo)
mode=$1
out=$(timeout 60 "${mpi[@]}" "$test_bin" "$@" 2>&1); rc=$?
echo "$out"
case "$mode" in
  sums) [ $rc -eq 0 ] && [ "$(grep -c ': ok$' <<<"$out")" -eq "$np" ] ;;
  mismatch) [ $rc -eq 0 ] && grep -q "rank(s) 1 differ from rank 0" <<<"$out" ;;
  # Killed: mpirun ends the job and names the rank, or rank 0's wait times out and says so.
  kill) [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -Eq "rank 1 .*(exited on signal 9|Killed)|another rank has stopped" <<<"$out" ;;
esac
