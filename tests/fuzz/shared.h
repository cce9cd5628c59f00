// shared.h - what the fuzzer's processes share: per-operation tallies of
// results, failure counts, a stop flag and one heartbeat per worker, in one
// MAP_SHARED page set made before the first fork.  Also the expectation
// type every system call is checked against.
//
// Contract: every field is a lock-free std::atomic, so any process may
// update it at any time, and a process killed with SIGKILL mid-update leaves
// nothing inconsistent (only the count it was about to add is lost).
// record() and fail() print at most max_printed lines in all.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <string>

namespace fuzz {

enum Op : int {
  op_open_master, op_open_group, op_close, op_dup, op_install, op_write, op_read, op_writev,
  op_readv, op_set_delay, op_revoke, op_flush_ioctl, op_fsync, op_sleep, op_awake, op_poll,
  op_epoll_ctl, op_epoll_wait, op_unknown_ioctl, op_get_params, op_set_params, op_count
};
const char* op_name(int op);

inline constexpr int max_errno = 134;
inline constexpr int max_workers = 64;
inline constexpr int max_printed = 200;
inline constexpr int sleeper_killed = max_errno + 0;  // tally slot: sleeper died of SIGKILL

struct Heartbeat {
  std::atomic<int> pid{0};
  std::atomic<int> op{-1};
  std::atomic<std::int64_t> since_ms{0};  // start of the current operation, 0 between
};

struct Shared {
  std::atomic<std::uint64_t> tally[op_count][max_errno + 1];  // [op][0] success, [op][e] errno e
  std::atomic<std::uint64_t> unexpected[op_count];
  std::atomic<std::uint64_t> failures;      // everything that fails the run
  std::atomic<std::uint64_t> total_ops;
  std::atomic<std::uint64_t> short_writes;  // write/writev cut by an unmapped page
  std::atomic<int> printed;
  std::atomic<bool> stop;
  Heartbeat hb[max_workers];
};

// A fresh zeroed Shared in anonymous MAP_SHARED memory (aborts on failure).
Shared* make_shared_state();

// What a call may return: -1 with one of `errnos`, or (if success) a value
// in [lo, hi].
struct Expect {
  std::uint64_t errnos = 0;
  bool success = false;
  long lo = 0, hi = LONG_MAX;

  Expect& err(int e) { errnos |= std::uint64_t{1} << e; return *this; }
  Expect& ok(long l = 0, long h = LONG_MAX) { success = true; lo = l; hi = h; return *this; }
  bool accepts(long ret, int e) const {
    if (ret >= 0) return success && ret >= lo && ret <= hi;
    return e > 0 && e < 64 && (errnos >> e & 1);
  }
  std::string describe() const;
};

// Monotonic milliseconds.
std::int64_t now_ms();

// Tallies ret/err under op; if exp does not accept it, counts a failure and
// prints "UNEXPECTED <who>: <what()> = <result> (expected <exp>)".
// Returns whether it was accepted.
bool record(Shared& s, Op op, long ret, int err, const Expect& exp, const std::string& who,
            const std::function<std::string()>& what);

// Counts a failure and prints "FAILURE <who>: <msg>".
void fail(Shared& s, const std::string& who, const std::string& msg);

// "EPERM" for EPERM etc.
std::string errno_name(int e);

}  // namespace fuzz
