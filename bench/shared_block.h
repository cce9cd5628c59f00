// shared_block.h - what the producer and consumer processes share.
//
// Contract: one ControlBlock per run of one target, placed in an anonymous
// MAP_SHARED mapping by the parent before it forks the two workload
// processes (see runner.cpp).  It carries the phase hand-shake, the
// per-producer written counts, the delivery verdict and one ThreadStats per
// workload thread.
//
// Thread safety: each ThreadStats is written by exactly one thread (its
// histograms without synchronisation); the parent reads them only after
// both processes exited (waitpid orders the accesses).  progress_* are
// single-writer relaxed atomics the parent samples while running.  The
// hand-shake fields are atomics; plain fields are published by a release
// store of the flag named next to them.
#pragma once

#include <atomic>
#include <cstdint>

#include "histogram.h"
#include "seen_set.h"

namespace synchmess::bench {

inline constexpr unsigned kMaxThreads = 32;

// Operation types, each with its own latency histogram.
enum Op : int {
  kInstall,       // IOCTL_INSTALL_GROUP on the master (mq_open for mqueue)
  kOpen,          // access() spin + open(O_RDWR) of a group device
  kWrite1,        // phase 1 write (no delay)
  kReadHit1,      // phase 1 read that returned a message
  kReadEmpty1,    // phase 1 read of an empty group
  kWrite2,        // phase 2 write (delayed on the device)
  kReadHit2,
  kReadEmpty2,
  kFlush,         // fsync / IOCTL_FLUSH_DELAYED_MESSAGES of one group
  kSetDelay,      // IOCTL_SET_SEND_DELAY
  kSleep,         // time a producer spent inside IOCTL_SLEEP
  kHandoff,       // start of the AWAKE call that woke it -> sleeper running
  kAwake,         // one IOCTL_AWAKE call
  kRevoke,        // IOCTL_REVOKE_DELAYED_MESSAGES
  kDrainRead,     // reads of the final drain (hits and empties)
  kDeliver1,      // end to end: write started -> read returned, phase 1
  kDeliver2,      // same, phase 2 (includes the send delay or a flush)
  kOpCount
};

const char* op_name(Op op);

struct alignas(64) ThreadStats {
  std::atomic<std::uint64_t> progress_ops{0};  // completed writes or reads
  std::atomic<std::uint64_t> progress_hits{0}; // reads that got a message
  std::uint64_t write_full = 0;    // EPERM/EAGAIN: group full, retried
  std::uint64_t write_errors = 0;  // any other failure or short write
  std::uint64_t read_errors = 0;
  std::uint64_t corrupt = 0;       // wrong length, magic or checksum
  std::uint64_t duplicates = 0;
  std::uint64_t other_errors = 0;  // flush, ioctl, sleep failures
  int last_errno = 0;
  LogHistogram hist[kOpCount];
};

// SLEEP/AWAKE for the baselines that have no such call: a futex word in the
// shared block (the kernel's own wait queue, nothing more).
struct SleepBarrier {
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::uint32_t> waiting{0};
};

struct ControlBlock {
  // Start: each process adds 1 when its groups are open; the parent then
  // stores deadline1_ns and sets go.
  std::atomic<std::uint32_t> ready{0};
  std::atomic<std::uint32_t> go{0};
  std::atomic<std::uint32_t> abort{0};  // parent asks everyone to stop
  std::uint64_t t0_ns = 0;
  std::uint64_t deadline1_ns = 0;

  // Phase 2 starts when consumer 0 has woken every producer.
  std::atomic<std::uint32_t> phase{1};
  std::atomic<std::uint64_t> phase2_start_ns{0};
  std::atomic<std::uint32_t> awake_calls{0};
  // Hand-off: the AWAKE calls that woke someone (written by consumer 0) and
  // when each producer ran again (written by that producer).  The parent
  // matches them after both processes exited.
  unsigned awake_ok_count = 0;
  std::uint64_t awake_ok_start_ns[kMaxThreads] = {};
  std::uint64_t awake_ok_end_ns[kMaxThreads] = {};
  std::uint64_t woke_ns[kMaxThreads] = {};
  SleepBarrier barrier;

  // Producers finished: written[] and producers_done_ns are valid.
  std::atomic<std::uint32_t> producers_done{0};
  std::uint64_t producers_done_ns = 0;
  std::uint64_t written[kMaxThreads] = {};

  // Consumer process finished the final drain and the check.
  std::atomic<std::uint32_t> consumers_done{0};
  std::uint64_t final_start_ns = 0;
  std::uint64_t consumers_done_ns = 0;
  DeliveryCheck check;
  std::uint64_t out_of_range = 0;
  std::uint64_t drained = 0;
  char flush_method[16] = {};
  char error[256] = {};  // first fatal error, if any

  ThreadStats producer[kMaxThreads];
  ThreadStats consumer[kMaxThreads];
  ThreadStats final_step;  // consumer process main thread: flush/revoke/drain
  ThreadStats setup[2];    // install/open: [0] producers, [1] consumers
};

}  // namespace synchmess::bench
