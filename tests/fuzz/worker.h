// worker.h - one storm process: random hostile operations against the
// devices until the stop flag, the deadline or the operation budget.
//
// Contract: run_worker() never returns (it _exits: 0 normally, 3 if the
// fuzzer's own memory model broke).  Every system call's result is checked
// against what the ABI and the kernel's FUSE code allow for exactly those
// arguments (shared.h record()); anything else is a failure with the
// worker's seed and operation number.  SLEEP runs in child processes that
// die with the worker (PR_SET_PDEATHSIG); each is woken, signalled or killed
// and must be released within 5 s.  Single-threaded.
#pragma once

#include <cstdint>

#include "tests/fuzz/options.h"
#include "tests/fuzz/shared.h"

namespace fuzz {

[[noreturn]] void run_worker(const Options& o, Shared& s, int slot, unsigned generation,
                             std::uint64_t seed, std::int64_t deadline_ms);

}  // namespace fuzz
