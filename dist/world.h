// The processes of a data-parallel run (docs/distributed.md). Under mpirun
// (Open MPI's environment variables set) start() brings MPI up and installs
// the runtime's collectives (runtime/collective.h), run on a communication
// thread of this layer; otherwise the world is this one process and no MPI
// call is made, so `nnc run` needs no MPI at run time.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"

namespace nnc::dist {

struct World {
  int rank = 0;
  int size = 1;
  int localSize = 1;  // ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE)
  bool distributed() const { return size > 1; }
};

// Whether mpirun started this process.
bool launchedByMpirun();

// Idempotent; `timeoutSeconds` bounds each wait for a bucket's sum (a rank
// that died or hangs then stops the others with that rank's name, if
// mpirun has not already). An error when launched by mpirun and nnc was
// built without MPI, or MPI does not start.
Expected<World> start(double timeoutSeconds = 60);
const World& world();
// Stops the communication thread and MPI (nothing for one process).
void stop();

// Every rank's `value` of `what` (a hash of the compiled graph, the data's
// shape) is equal; else an error listing each rank's value.
Status checkSame(std::string_view what, uint64_t value);
// v ← the elementwise sum of every rank's v (sharded evaluation's counts).
Status sumAcross(std::vector<double>& v);
// Why the last collective failed (after nnc_collectives_failed()).
std::string lastFailure();
// Ends every rank's process with `code` (MPI_Abort), or this one's.
[[noreturn]] void abortAll(int code);

}  // namespace nnc::dist
