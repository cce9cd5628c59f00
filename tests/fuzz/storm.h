// storm.h - the storm: P worker processes (worker.h) for a bounded time and
// a bounded number of operations, SIGKILLed and respawned at random.
//
// Contract: run_storm() prints the seed first, failures as they happen
// (UNEXPECTED / FAILURE lines on stderr), then a table of results per
// operation, and returns 0 only if nothing failed.  It is the child
// subreaper of everything it starts, so when it returns every process of
// the storm has exited (or is reported as stuck in the daemon).  It ends
// within seconds + 30 s even if the daemon stops answering: a worker busy in
// one operation for 10 s is a hang (reported, SIGKILLed).
#pragma once

#include "tests/fuzz/options.h"

namespace fuzz {

int run_storm(const Options& o);

}  // namespace fuzz
