#include "tests/fuzz/storm.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "tests/fuzz/shared.h"
#include "tests/fuzz/worker.h"

namespace fuzz {
namespace {

constexpr std::int64_t hang_ms = 10000;       // one operation this long is a hang
constexpr std::int64_t wind_down_ms = 15000;  // workers' time to stop after the deadline
constexpr std::int64_t reap_ms = 10000;       // a SIGKILLed process this long unreaped is stuck

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Slot {
  pid_t pid = 0;
  unsigned gen = 0;
  std::uint64_t seed = 0;
  std::int64_t killed_at = 0;  // we sent SIGKILL
  bool hang_reported = false;
};

class Storm {
 public:
  Storm(const Options& o, std::uint64_t seed) : o_(o), s_(*make_shared_state()), seed_(seed), rng_(seed), slots_(o.workers) {}
  int run();

 private:
  void spawn(int i);
  void reap();
  void watch();
  void summary(std::int64_t elapsed_ms) const;
  bool finishing() const { return s_.stop.load(); }

  const Options& o_;
  Shared& s_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<Slot> slots_;
  std::int64_t deadline_ = 0;
  unsigned kills_ = 0, respawns_ = 0, lost_ = 0;
};

void Storm::spawn(int i) {
  Slot& sl = slots_[i];
  ++sl.gen;
  sl.seed = o_.worker_seed ? o_.worker_seed : mix(seed_ ^ (static_cast<std::uint64_t>(i) << 40) ^ sl.gen);
  sl.killed_at = 0;
  sl.hang_reported = false;
  s_.hb[i].since_ms.store(0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    fail(s_, "storm", fmt::format("fork: {}", std::strerror(errno)));
    return;
  }
  if (pid == 0) run_worker(o_, s_, i, sl.gen, sl.seed, deadline_);
  sl.pid = pid;
  s_.hb[i].pid.store(pid);
}

void Storm::reap() {
  int st = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &st, WNOHANG)) > 0) {
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
      Slot& sl = slots_[i];
      if (sl.pid != pid) continue;
      bool ours = sl.killed_at != 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
      bool done = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ours && !done)
        fail(s_, "storm", fmt::format("worker {} gen {} seed {:#x} {} {}", i, sl.gen, sl.seed,
                                      WIFSIGNALED(st) ? "died of signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st)));
      sl.pid = 0;
      bool budget_left = s_.total_ops.load() < o_.max_ops;
      if (!finishing() && now_ms() < deadline_ && budget_left) {
        ++respawns_;
        spawn(i);
      }
    }
    // Any other pid is an orphaned sleeper of a killed worker: reaped, fine.
  }
}

// Hangs: an operation running for hang_ms, or a SIGKILLed worker not gone.
void Storm::watch() {
  std::int64_t now = now_ms();
  for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
    Slot& sl = slots_[i];
    if (sl.pid == 0) continue;
    std::int64_t since = s_.hb[i].since_ms.load();
    int op = s_.hb[i].op.load();
    std::int64_t limit = op < 0 ? wind_down_ms : hang_ms;
    if (since != 0 && now - since > limit && !sl.hang_reported) {
      fail(s_, "storm", fmt::format("HANG: worker {} gen {} seed {:#x} in {} for {} ms", i, sl.gen, sl.seed,
                                    op_name(op), now - since));
      sl.hang_reported = true;
      ::kill(sl.pid, SIGKILL);
      if (sl.killed_at == 0) sl.killed_at = now;
    }
    if (sl.killed_at != 0 && now - sl.killed_at > reap_ms) {
      fail(s_, "storm", fmt::format("worker {} pid {} still alive {} ms after SIGKILL (stuck in {} in the daemon)", i,
                                    sl.pid, now - sl.killed_at, op_name(op)));
      sl.pid = 0;
      ++lost_;
      if (!finishing() && now < deadline_) spawn(i);
    }
  }
}

int Storm::run() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::int64_t start = now_ms();
  deadline_ = start + static_cast<std::int64_t>(o_.seconds) * 1000;
  fmt::print("# storm: seed {:#x}, {} workers, {} s, at most {} operations, uid {}, dev-dir {}{}\n", seed_,
             o_.workers, o_.seconds, o_.max_ops, ::geteuid(), o_.dev_dir, o_.kill_workers ? "" : ", no kills");
  for (int i = 0; i < static_cast<int>(slots_.size()); ++i) spawn(i);
  std::int64_t next_kill = start + 200 + static_cast<std::int64_t>(rng_() % 800);
  for (;;) {
    reap();
    watch();
    std::int64_t now = now_ms();
    bool alive = false;
    for (const Slot& sl : slots_) alive |= sl.pid != 0;
    if (now >= deadline_ || !alive) break;
    if (o_.kill_workers && now >= next_kill) {
      Slot& sl = slots_[rng_() % slots_.size()];
      if (sl.pid != 0 && sl.killed_at == 0) {
        ::kill(sl.pid, SIGKILL);
        sl.killed_at = now;
        ++kills_;
      }
      next_kill = now + 100 + static_cast<std::int64_t>(rng_() % 900);
    }
    ::usleep(10000);
  }
  s_.stop.store(true);
  std::int64_t end = now_ms();
  for (;;) {  // the workers stop their sleepers and exit
    reap();
    watch();
    bool alive = false;
    for (const Slot& sl : slots_) alive |= sl.pid != 0;
    if (!alive) break;
    if (now_ms() - end > wind_down_ms + reap_ms + 1000) break;
    ::usleep(10000);
  }
  for (const Slot& sl : slots_)
    if (sl.pid != 0) ::kill(sl.pid, SIGKILL);
  std::int64_t last = now_ms();
  for (;;) {  // every descendant, orphaned sleepers included
    int st;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid < 0) break;  // ECHILD: nobody left
    if (pid == 0) {
      if (now_ms() - last > reap_ms) {
        fail(s_, "storm", "processes of the storm still alive 10 s after the end: stuck in the daemon");
        break;
      }
      ::usleep(10000);
    }
  }
  summary(end - start);
  return s_.failures.load() == 0 ? 0 : 1;
}

void Storm::summary(std::int64_t elapsed_ms) const {
  std::uint64_t total = 0;
  fmt::print("# {:<14} {:>9} {:>9}  errors\n", "operation", "calls", "ok");
  for (int op = 0; op < op_count; ++op) {
    std::uint64_t calls = 0;
    std::string errs;
    for (int e = 0; e <= max_errno; ++e) {
      std::uint64_t n = s_.tally[op][e].load();
      calls += n;
      if (e == 0 || n == 0) continue;
      errs += fmt::format("{}{} {}", errs.empty() ? "" : ", ", e == sleeper_killed ? "SIGKILLed" : errno_name(e), n);
    }
    total += calls;
    std::uint64_t bad = s_.unexpected[op].load();
    fmt::print("# {:<14} {:>9} {:>9}  {}{}\n", op_name(op), calls, s_.tally[op][0].load(), errs,
               bad ? fmt::format("  [{} UNEXPECTED]", bad) : "");
  }
  fmt::print("# {} calls in {:.1f} s; workers killed {}, respawned {}, lost {}; short writes {}\n", total,
             elapsed_ms / 1000.0, kills_, respawns_, lost_, s_.short_writes.load());
  // Successful writes bound how many messages were ever queued at once; the
  // runner allows the daemon one 64-byte queue node per message it held
  // (kept for reuse by design: docs/abi.md, Memory accounting).
  fmt::print("# storm: queued messages {}\n", s_.tally[op_write][0].load() + s_.tally[op_writev][0].load());
  fmt::print("# storm: {} failures (seed {:#x})\n", s_.failures.load(), seed_);
  std::fflush(stdout);
}

}  // namespace

int run_storm(const Options& o) {
  std::uint64_t seed = o.seed;
  if (seed == 0) seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  return Storm(o, seed).run();
}

}  // namespace fuzz
