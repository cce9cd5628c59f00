// workload.h - the original SynchMess benchmark as two process bodies.
//
// Contract: run_producers() and run_consumers() are the bodies of the two
// forked workload processes; each attaches to the transport (install + open
// every group), reports ready in the ControlBlock, waits for go, runs its
// threads through both phases and returns a process exit code (0 = ran to
// the end; the verdict on the messages is in the ControlBlock).
//
// Phases (the original's, with wall-clock timing):
//   1. until deadline1: producers write to random groups, consumers read
//      from random groups.
//   2. producer 0 sets the send delay on every group; every producer SLEEPs
//      on group 1; consumer 0 calls AWAKE until it has woken them all.  Then
//      for `duration` producers write (delayed), consumer 0 flushes random
//      groups, the other consumers read.
//   3. (consumer process, once producers are done) final: flush every group
//      (FinalMode::kFlush) or not (kRevoke), revoke every group, drain every
//      group, reset the delay to 0, check exactly-once delivery.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shared_block.h"
#include "transport.h"

namespace synchmess::bench {

enum class FinalMode { kFlush, kRevoke };

struct WorkloadOptions {
  unsigned threads = 8;
  unsigned groups = 64;
  std::uint64_t duration_ns = 30'000'000'000ULL;
  std::size_t message_size = 128;
  unsigned delay_ms = 1000;
  FinalMode final_mode = FinalMode::kFlush;
};

int run_producers(Transport& t, const WorkloadOptions& o, ControlBlock* cb);
int run_consumers(Transport& t, const WorkloadOptions& o, ControlBlock* cb);

}  // namespace synchmess::bench
