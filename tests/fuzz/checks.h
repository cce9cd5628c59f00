// checks.h - before and after the storm, against the same daemon.
//
// Contract: each function prints "# ..." details on stdout and one line
// "ok ..." or "FAILED ..." per finding, and returns 0 only if everything
// held.  All waits are bounded (at most ~10 s each); a thread stuck in the
// daemon is reported and the process exits anyway.
//   warmup          installs groups 1..groups and passes traffic, sleepers
//                   and polls through each, so the daemon's allocator caches
//                   exist before the memory baseline is taken
//   check_sleepers  AWAKE on every group wakes nobody (no storm process is
//                   alive, so any count is a sleeper the daemon leaked)
//   check_groups    every group: installs again, flushes, drains (each read
//                   a whole message), then a unique message goes through;
//                   the parameters are still the daemon's defaults
//   check_awake     K sleeper threads on a group: AWAKE calls add up to
//                   exactly K, then one more AWAKE returns 0
#pragma once

#include "tests/fuzz/options.h"

namespace fuzz {

int warmup(const Options& o);
int check_sleepers(const Options& o);
int check_groups(const Options& o);
int check_awake(const Options& o);

// Opens the master and reads the parameters into o; false (and a message)
// if the daemon does not answer.
bool learn_params(Options& o);

}  // namespace fuzz
