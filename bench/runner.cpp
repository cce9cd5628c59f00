// runner.cpp - see runner.h.
#include "runner.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "clock.h"

namespace synchmess::bench {
namespace {

constexpr std::uint64_t kSecond = 1'000'000'000ULL;
constexpr std::uint64_t kStartTimeoutNs = 120 * kSecond;
constexpr std::uint64_t kOverrunNs = 120 * kSecond;

// The two workload processes of one run.
class Children {
 public:
  pid_t pid[2] = {-1, -1};  // [0] consumer, [1] producer
  int status[2] = {0, 0};
  bool exited[2] = {false, false};

  // Reaps whatever exited; true when both have.
  bool reap() {
    for (int i = 0; i < 2; ++i) {
      if (exited[i] || pid[i] <= 0) {
        exited[i] = true;
        continue;
      }
      if (waitpid(pid[i], &status[i], WNOHANG) == pid[i]) exited[i] = true;
    }
    return exited[0] && exited[1];
  }
  bool any_exited() const { return exited[0] || exited[1]; }
  void kill_all() {
    for (int i = 0; i < 2; ++i)
      if (!exited[i] && pid[i] > 0) kill(pid[i], SIGKILL);
  }
  bool clean() const {
    for (int i = 0; i < 2; ++i)
      if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0) return false;
    return true;
  }
};

std::uint64_t sum_progress(const ThreadStats* st, unsigned n,
                           std::atomic<std::uint64_t> ThreadStats::*field) {
  std::uint64_t s = 0;
  for (unsigned i = 0; i < n; ++i) s += (st[i].*field).load(std::memory_order_relaxed);
  return s;
}

class Progress {
 public:
  Progress(const std::string& name, const ControlBlock* cb, unsigned threads,
           bool enabled)
      : name_(name), cb_(cb), threads_(threads), enabled_(enabled),
        tty_(isatty(STDERR_FILENO) != 0) {}

  void tick(std::uint64_t now) {
    if (!enabled_ || now < next_) return;
    next_ = now + kSecond;
    std::uint64_t w = sum_progress(cb_->producer, threads_, &ThreadStats::progress_ops);
    std::uint64_t r = sum_progress(cb_->consumer, threads_, &ThreadStats::progress_ops);
    std::uint64_t h = sum_progress(cb_->consumer, threads_, &ThreadStats::progress_hits);
    std::uint64_t full = 0;
    for (unsigned i = 0; i < threads_; ++i) full += cb_->producer[i].write_full;
    const char* phase = cb_->producers_done.load() ? "final"
                        : cb_->phase.load() == 2 ? "phase 2" : "phase 1";
    double dt = last_ ? double(now - last_) / 1e9 : 0.0;
    std::fprintf(stderr,
                 "%s[%s] %-7s %5.1fs  writes %llu (%.0f/s)  reads %llu, hits %llu "
                 "(%.0f/s)  full %llu   %s",
                 tty_ ? "\r" : "", name_.c_str(), phase,
                 double(now - cb_->t0_ns) / 1e9, (unsigned long long)w,
                 dt > 0 ? double(w - last_w_) / dt : 0.0, (unsigned long long)r,
                 (unsigned long long)h, dt > 0 ? double(h - last_h_) / dt : 0.0,
                 (unsigned long long)full, tty_ ? "" : "\n");
    last_ = now;
    last_w_ = w;
    last_h_ = h;
    printed_ = true;
  }
  void done() {
    if (enabled_ && printed_ && tty_) std::fputc('\n', stderr);
  }

 private:
  std::string name_;
  const ControlBlock* cb_;
  unsigned threads_;
  bool enabled_, tty_;
  bool printed_ = false;
  std::uint64_t next_ = 0, last_ = 0, last_w_ = 0, last_h_ = 0;
};

void collect(const ControlBlock* cb, const WorkloadOptions& o, TargetResult* r) {
  auto add = [&](const ThreadStats& st, LogHistogram* into) {
    for (int op = 0; op < kOpCount; ++op) into[op].merge(st.hist[op]);
    r->write_full += st.write_full;
    r->write_errors += st.write_errors;
    r->read_errors += st.read_errors;
    r->corrupt += st.corrupt;
    r->duplicates += st.duplicates;
    r->other_errors += st.other_errors;
  };
  for (unsigned i = 0; i < o.threads; ++i) {
    add(cb->producer[i], r->hist);
    add(cb->consumer[i], r->hist);
  }
  add(cb->setup[0], r->hist);
  add(cb->setup[1], r->hist);
  add(cb->final_step, r->final_hist);

  // Hand-off: each sleeper against the latest successful AWAKE that had
  // started before it ran again.
  std::uint64_t first_ok = cb->awake_ok_count ? cb->awake_ok_start_ns[0] : 0;
  std::uint64_t last_up = 0;
  for (unsigned i = 0; i < o.threads; ++i) {
    std::uint64_t woke = cb->woke_ns[i];
    if (woke == 0) continue;
    std::uint64_t start = 0;
    for (unsigned k = 0; k < cb->awake_ok_count && k < kMaxThreads; ++k)
      if (cb->awake_ok_start_ns[k] <= woke) start = cb->awake_ok_start_ns[k];
    if (start) r->hist[kHandoff].record(woke - start);
    last_up = std::max(last_up, woke);
  }
  if (first_ok && last_up > first_ok) r->wake_all_ns = last_up - first_ok;
  r->awake_calls = cb->awake_calls.load();

  std::uint64_t p2 = cb->phase2_start_ns.load();
  r->phase1_s = double(cb->deadline1_ns - cb->t0_ns) / 1e9;
  if (p2 && cb->producers_done_ns > p2)
    r->phase2_s = double(cb->producers_done_ns - p2) / 1e9;
  if (cb->consumers_done_ns > cb->final_start_ns && cb->final_start_ns)
    r->final_s = double(cb->consumers_done_ns - cb->final_start_ns) / 1e9;
  r->check = cb->check;
  r->drained = cb->drained;
  r->out_of_range = cb->out_of_range;
  r->flush_method = cb->flush_method;
  r->round_write_p50.push_back(r->hist[kWrite1].percentile(0.5));
  r->round_read_p50.push_back(r->hist[kReadHit1].percentile(0.5));
  r->round_delivered_per_s.push_back(r->delivered_per_s_phase1());
}

}  // namespace

bool TargetResult::exactly_once() const {
  return ok && duplicates == 0 && corrupt == 0 && out_of_range == 0 &&
         check.unexpected == 0 && (check.missing == 0 || revoked_at_end);
}

double TargetResult::delivered_per_s_phase1() const {
  return phase1_s > 0 ? double(hist[kReadHit1].count()) / phase1_s : 0.0;
}

void TargetResult::merge(const TargetResult& later) {
  for (int op = 0; op < kOpCount; ++op) {
    hist[op].merge(later.hist[op]);
    final_hist[op].merge(later.final_hist[op]);
  }
  ok = ok && later.ok;
  if (error.empty()) error = later.error;
  rounds += later.rounds;
  phase1_s += later.phase1_s;
  phase2_s += later.phase2_s;
  final_s += later.final_s;
  awake_calls += later.awake_calls;
  wake_all_ns = std::max(wake_all_ns, later.wake_all_ns);
  if (flush_method.empty()) flush_method = later.flush_method;
  check.expected += later.check.expected;
  check.delivered += later.check.delivered;
  check.missing += later.check.missing;
  check.unexpected += later.check.unexpected;
  drained += later.drained;
  out_of_range += later.out_of_range;
  write_full += later.write_full;
  write_errors += later.write_errors;
  read_errors += later.read_errors;
  corrupt += later.corrupt;
  duplicates += later.duplicates;
  other_errors += later.other_errors;
  round_write_p50.insert(round_write_p50.end(), later.round_write_p50.begin(),
                         later.round_write_p50.end());
  round_read_p50.insert(round_read_p50.end(), later.round_read_p50.begin(),
                        later.round_read_p50.end());
  round_delivered_per_s.insert(round_delivered_per_s.end(),
                               later.round_delivered_per_s.begin(),
                               later.round_delivered_per_s.end());
}

TargetResult run_target(const std::string& name, Transport& t,
                        const WorkloadOptions& o, const RunOptions& ro) {
  TargetResult r;
  r.name = name;
  r.kind = t.kind();
  r.has_delay = t.has_delay();
  r.revoked_at_end = t.has_delay() && o.final_mode == FinalMode::kRevoke;
  r.rounds = 1;

  void* mem = mmap(nullptr, sizeof(ControlBlock), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    r.ok = false;
    r.error = std::string("mmap: ") + std::strerror(errno);
    return r;
  }
  auto* cb = new (mem) ControlBlock;
  std::string err = t.prepare();
  r.description = t.description();
  if (!err.empty()) {
    r.ok = false;
    r.error = err;
    cb->~ControlBlock();
    munmap(mem, sizeof(ControlBlock));
    return r;
  }

  std::fflush(stdout);
  std::fflush(stderr);
  Children ch;
  for (int i = 0; i < 2; ++i) {
    ch.pid[i] = fork();
    if (ch.pid[i] == 0) {
      int rc = i == 0 ? run_consumers(t, o, cb) : run_producers(t, o, cb);
      _exit(rc);
    }
    if (ch.pid[i] < 0) {
      r.ok = false;
      r.error = std::string("fork: ") + std::strerror(errno);
      cb->abort.store(1);
    }
  }

  // Start both processes together once each has its groups open.
  std::uint64_t wait_start = now_ns();
  while (cb->ready.load(std::memory_order_acquire) < 2 &&
         !cb->abort.load() && !(ch.reap(), ch.any_exited())) {
    if (now_ns() - wait_start > kStartTimeoutNs) {
      cb->abort.store(1);
      r.error = "workload processes did not get ready in 120 s";
      break;
    }
    usleep(1000);
  }
  cb->t0_ns = now_ns();
  cb->deadline1_ns = cb->t0_ns + o.duration_ns;
  cb->go.store(1, std::memory_order_release);

  Progress progress(name, cb, o.threads, ro.progress);
  std::uint64_t limit = cb->t0_ns + 2 * o.duration_ns +
                        std::uint64_t(o.delay_ms) * 1'000'000ULL + kOverrunNs;
  bool killed = false;
  std::uint64_t abort_seen = 0;
  while (!ch.reap()) {
    std::uint64_t now = now_ns();
    progress.tick(now);
    if (!killed && now > limit) {
      cb->abort.store(1);
      if (r.error.empty()) r.error = "run overran by 2 minutes: workload killed";
      usleep(2'000'000);
      ch.reap();
      ch.kill_all();
      killed = true;
    }
    // After an abort, the other side may be blocked (e.g. in SLEEP):
    // give it 10 s to notice, then kill it.
    if (abort_seen == 0 && cb->abort.load()) abort_seen = now;
    if (!killed && abort_seen && now - abort_seen > 10 * kSecond) {
      ch.kill_all();
      killed = true;
    }
    usleep(20'000);
  }
  progress.done();

  collect(cb, o, &r);
  if (cb->error[0]) r.error = cb->error;
  r.ok = r.error.empty() && ch.clean() && !killed &&
         cb->consumers_done.load() != 0;
  if (!r.ok && r.error.empty()) r.error = "a workload process failed";
  cb->~ControlBlock();
  munmap(mem, sizeof(ControlBlock));
  t.cleanup();
  return r;
}

}  // namespace synchmess::bench
