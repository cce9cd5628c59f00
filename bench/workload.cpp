// workload.cpp - the two workload processes and run_target() (see bench.h
// and README.md "The workload").
//
// Hot path: two CLOCK_MONOTONIC readings around each system call, recorded
// into the calling thread's own ThreadStats (no locks, no allocation).  A
// full group (EPERM on the device, EAGAIN on a pipe or queue) is counted,
// followed by sched_yield(), and the same message (same sequence number) is
// retried on another random group.
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <cerrno>
#include <cstring>
#include <new>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "bench.h"
#include "sm_codec.h"

namespace synchmess::bench {
namespace {

constexpr std::uint64_t kSecond = 1'000'000'000ULL;
constexpr unsigned kMaxConsecutiveErrors = 1000;

void bump(std::atomic<std::uint64_t>& c) {  // single writer
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void fail(ControlBlock* cb, const std::string& what) {
  if (cb->error[0] == '\0') std::strncpy(cb->error, what.c_str(), sizeof(cb->error) - 1);  // first wins
  cb->abort.store(1, std::memory_order_release);
}

bool aborted(const ControlBlock* cb) { return cb->abort.load(std::memory_order_relaxed) != 0; }

// Times one call into st.hist[op]; a failure is counted and aborts the run.
template <typename Call>
long timed(ControlBlock* cb, ThreadStats& st, Op op, const char* what, Call call) {
  std::uint64_t t = now_ns();
  long r = call();
  if (r < 0) return ++st.counter[kOtherErrors], fail(cb, fmt::format("{}: {}", what, std::strerror(int(-r)))), r;
  st.hist[op].record(now_ns() - t);
  return r;
}

template <typename Call>
void each_group(const WorkloadOptions& o, ControlBlock* cb, ThreadStats& st, Op op, const char* what, Call call) {
  for (unsigned g = 0; g < o.groups && timed(cb, st, op, what, [&] { return call(g); }) >= 0; ++g) {}
}

void produce(unsigned id, Transport& g, const WorkloadOptions& o, ControlBlock* cb, std::barrier<>& sync) {
  ThreadStats& st = cb->producer[id];
  std::minstd_rand rng(std::uint32_t(now_ns() * (id + 1)));  // per thread: rand() takes a lock
  std::vector<unsigned char> msg(o.message_size);
  std::uint64_t seq = 0;
  auto write_until = [&](std::uint64_t deadline, Op op) {
    bool retry = false;
    unsigned errors = 0;
    smc_fields f{id, 0, 0, 0};
    while (!aborted(cb) && (f.sent_ns = now_ns()) < deadline) {
      if (!retry) {  // the original's text, then the codec's trailer
        std::fill(msg.begin(), msg.end(), 0);
        fmt::format_to_n(msg.data(), msg.size() - SMC_TRAILER_SIZE, "SynchMess producer {} message {}", id, seq);
      }
      f.group = rng() % o.groups;
      f.seq = seq;
      smc_seal(msg.data(), msg.size(), &f);
      std::uint64_t t = now_ns();
      long r = g.write(f.group, msg.data(), msg.size());
      if (!(retry = r != long(msg.size()))) {
        st.hist[op].record(now_ns() - t);
        ++seq, errors = 0;
        bump(st.progress_ops);
      } else if (r == -EPERM || r == -EAGAIN) {
        ++st.counter[kWriteFull];
        sched_yield();
      } else if (++st.counter[kWriteErrors], ++errors >= kMaxConsecutiveErrors) {
        fail(cb, std::string("write keeps failing: ") + (r < 0 ? std::strerror(int(-r)) : "short write"));
      }
    }
  };
  write_until(cb->deadline1_ns, kWrite1);
  sync.arrive_and_wait();
  if (id == 0 && g.has_delay)
    each_group(o, cb, st, kSetDelay, "IOCTL_SET_SEND_DELAY", [&](unsigned grp) { return g.set_delay(grp, o.delay_ms); });
  sync.arrive_and_wait();
  if (!aborted(cb) && timed(cb, st, kSleep, "IOCTL_SLEEP", [&] { return g.sleep(0); }) >= 0)
    cb->woke_ns[id] = now_ns();
  write_until(now_ns() + o.duration_ns, kWrite2);
  cb->written[id] = seq;
}

// One read of group grp: timed, verified, marked.  Returns the read's result.
long read_one(Transport& g, const WorkloadOptions& o, SeenSet& seen, ThreadStats& st,
              std::vector<unsigned char>& buf, unsigned grp, Op hit, Op empty, Op deliver) {
  std::uint64_t t = now_ns();
  long r = g.read(grp, buf.data(), buf.size());
  std::uint64_t t2 = now_ns();
  smc_fields m;
  bump(st.progress_ops);
  if (r < 0) return ++st.counter[kReadErrors], r;
  st.hist[r == 0 ? empty : hit].record(t2 - t);
  if (r == 0) return 0;
  bump(st.progress_hits);
  if (std::size_t(r) != o.message_size || smc_open(buf.data(), std::size_t(r), &m) != SMC_OK || m.group != grp)
    ++st.counter[kCorrupt];
  else if (!seen.mark(m.producer, m.seq))
    ++st.counter[kDuplicates];
  else if (deliver != kOpCount && t2 > m.sent_ns)
    st.hist[deliver].record(t2 - m.sent_ns);
  return r;
}

void consume(unsigned id, Transport& g, const WorkloadOptions& o, ControlBlock* cb, SeenSet& seen) {
  ThreadStats& st = cb->consumer[id];
  std::vector<unsigned char> buf(o.message_size + 4096);
  std::minstd_rand rng(std::uint32_t(now_ns() * (id + 7)));
  auto producing = [&] { return !cb->producers_done.load(std::memory_order_acquire) && !aborted(cb); };
  auto read_while = [&](auto cond) {
    for (unsigned errors = 0; cond() && !aborted(cb);) {
      bool p2 = cb->phase.load(std::memory_order_relaxed) == 2;
      long r = read_one(g, o, seen, st, buf, rng() % o.groups, p2 ? kReadHit2 : kReadHit1,
                        p2 ? kReadEmpty2 : kReadEmpty1, p2 ? kDeliver2 : kDeliver1);
      if ((errors = r < 0 ? errors + 1 : 0) >= kMaxConsecutiveErrors)
        fail(cb, std::string("read keeps failing: ") + std::strerror(int(-r)));
    }
  };
  if (id != 0) return read_while(producing);
  read_while([&] { return now_ns() < cb->deadline1_ns; });
  // Hand-off: AWAKE until every producer is counted as woken.
  std::uint64_t start = now_ns();
  for (unsigned woken = 0; woken < o.threads && !aborted(cb);) {
    if (now_ns() - start > 60 * kSecond)
      return fail(cb, fmt::format("AWAKE woke {} of {} sleepers in 60 s", woken, o.threads));
    std::uint64_t t = now_ns();
    long r = timed(cb, st, kAwake, "IOCTL_AWAKE", [&] { return g.awake(0); });
    cb->awake_calls.fetch_add(1, std::memory_order_relaxed);
    if (r > 0 && cb->awake_ok_count < kMaxThreads) cb->awake_ok_start_ns[cb->awake_ok_count++] = t;
    woken += unsigned(std::max(r, 0L));
  }
  cb->phase2_start_ns.store(now_ns(), std::memory_order_relaxed);
  cb->phase.store(2, std::memory_order_release);
  if (!g.has_delay) return read_while(producing);
  while (producing() && timed(cb, st, kFlush, "flush", [&] { return g.flush(rng() % o.groups); }) >= 0)
    bump(st.progress_ops);  // consumer 0 flushes random groups in phase 2
}

// The body of a workload process: attach, report ready, wait for go, run
// the threads; the consumer process then runs the end and the check.
int run_process(bool consumer, Transport& t, const WorkloadOptions& o, ControlBlock* cb) {
  if (std::string error = t.attach(cb, &cb->setup[consumer]); !error.empty()) return fail(cb, t.kind + ": " + error), 1;
  cb->ready.fetch_add(1, std::memory_order_acq_rel);
  while (cb->go.load(std::memory_order_acquire) == 0)
    if (aborted(cb)) return 1; else usleep(1000);
  SeenSet seen(o.threads);
  std::barrier<> sync(o.threads);
  std::vector<std::jthread> threads;
  for (unsigned i = 0; i < o.threads; ++i)
    threads.emplace_back([&, i] { consumer ? consume(i, t, o, cb, seen) : produce(i, t, o, cb, sync); });
  threads.clear();  // joins
  if (!consumer) {
    cb->producers_done_ns = now_ns();
    cb->producers_done.store(1, std::memory_order_release);
    return 0;
  }
  while (cb->producers_done.load(std::memory_order_acquire) == 0)
    if (aborted(cb)) return 1; else usleep(1000);
  // The end: final flush (or not: --final revoke), revoke, drain, reset delay.
  cb->final_start_ns = now_ns();
  ThreadStats& st = cb->final_step;
  if (t.has_delay && o.final_mode == "flush")
    each_group(o, cb, st, kFlush, "final flush", [&](unsigned g) { return t.flush(g); });
  if (t.has_delay) each_group(o, cb, st, kRevoke, "IOCTL_REVOKE_DELAYED_MESSAGES", [&](unsigned g) { return t.revoke(g); });
  std::vector<unsigned char> buf(o.message_size + 4096);
  for (unsigned g = 0; g < o.groups; ++g)
    while (read_one(t, o, seen, st, buf, g, kDrainRead, kDrainRead, kOpCount) > 0) ++cb->drained;
  if (t.has_delay) each_group(o, cb, st, kSetDelay, "IOCTL_SET_SEND_DELAY 0", [&](unsigned g) { return t.set_delay(g, 0); });
  cb->check = seen.check({cb->written, cb->written + o.threads});
  cb->consumers_done_ns = now_ns();
  cb->consumers_done.store(1, std::memory_order_release);
  return aborted(cb) ? 1 : 0;
}

// Adds one finished round's figures to *r.
void collect(const ControlBlock* cb, const WorkloadOptions& o, TargetResult* r) {
  LogHistogram write1, read1;  // this round's alone, for the per-round p50s
  auto add = [&](const ThreadStats& st, LogHistogram* into) {
    for (int op = 0; op < kOpCount; ++op) into[op].merge(st.hist[op]);
    for (int c = 0; c < kCounterCount; ++c) r->counter[c] += st.counter[c];
    write1.merge(st.hist[kWrite1]);
    read1.merge(st.hist[kReadHit1]);
  };
  for (unsigned i = 0; i < o.threads; ++i) add(cb->producer[i], r->hist), add(cb->consumer[i], r->hist);
  add(cb->setup[0], r->hist);
  add(cb->setup[1], r->hist);
  add(cb->final_step, r->final_hist);
  // Hand-off: each sleeper against the latest successful AWAKE that had
  // started before it ran again.
  std::uint64_t last_up = 0;
  for (unsigned i = 0; i < o.threads; ++i) {
    std::uint64_t woke = cb->woke_ns[i], start = 0;
    for (unsigned k = 0; woke && k < cb->awake_ok_count; ++k)
      if (cb->awake_ok_start_ns[k] <= woke) start = cb->awake_ok_start_ns[k];
    if (start) r->hist[kHandoff].record(woke - start);
    last_up = std::max(last_up, woke);
  }
  if (cb->awake_ok_count && last_up > cb->awake_ok_start_ns[0])
    r->wake_all_ns = std::max(r->wake_all_ns, last_up - cb->awake_ok_start_ns[0]);
  r->awake_calls += cb->awake_calls.load();
  double phase1_s = double(cb->deadline1_ns - cb->t0_ns) / 1e9;
  std::uint64_t p2 = cb->phase2_start_ns.load();
  r->phase1_s += phase1_s;
  if (p2 && cb->producers_done_ns > p2) r->phase2_s += double(cb->producers_done_ns - p2) / 1e9;
  if (cb->final_start_ns && cb->consumers_done_ns > cb->final_start_ns)
    r->final_s += double(cb->consumers_done_ns - cb->final_start_ns) / 1e9;
  r->check += cb->check;
  r->drained += cb->drained;
  if (r->flush_method.empty()) r->flush_method = cb->flush_method;
  r->round_write_p50.push_back(write1.percentile(0.5));
  r->round_read_p50.push_back(read1.percentile(0.5));
  r->round_delivered_per_s.push_back(phase1_s > 0 ? double(read1.count()) / phase1_s : 0);
}

}  // namespace

void run_target(Transport& t, const WorkloadOptions& o, bool progress, TargetResult* r) {
  ++r->rounds;
  std::string error = t.prepare();
  r->kind = t.kind;
  r->description = t.description;
  r->has_delay = t.has_delay;
  r->revoked_at_end = t.has_delay && o.final_mode == "revoke";
  void* mem = MAP_FAILED;
  if (error.empty() && (mem = mmap(nullptr, sizeof(ControlBlock), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
    error = std::string("mmap: ") + std::strerror(errno);
  if (!error.empty()) {
    if (r->ok) r->error = error;
    r->ok = false;
    return t.cleanup();
  }
  auto* cb = new (mem) ControlBlock;
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid[2] = {-1, -1};  // consumer, producer
  int status[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    if ((pid[i] = fork()) == 0) _exit(run_process(i == 0, t, o, cb));
    if (pid[i] < 0) fail(cb, std::string("fork: ") + std::strerror(errno));
  }
  auto reap = [&] {  // true when both exited
    for (int i = 0; i < 2; ++i)
      if (pid[i] > 0 && waitpid(pid[i], &status[i], WNOHANG) == pid[i]) pid[i] = 0;
    return pid[0] <= 0 && pid[1] <= 0;
  };
  auto kill_all = [&] {
    for (pid_t p : pid)
      if (p > 0) kill(p, SIGKILL);
    return true;
  };
  // Start both together once each has its groups open.
  for (std::uint64_t start = now_ns(); cb->ready < 2 && !aborted(cb) && !reap() && pid[0] > 0 && pid[1] > 0;
       usleep(1000))
    if (now_ns() - start > 120 * kSecond) fail(cb, "workload processes did not get ready in 120 s");
  cb->t0_ns = now_ns();
  cb->deadline1_ns = cb->t0_ns + o.duration_ns;
  cb->go.store(1, std::memory_order_release);

  bool tty = isatty(STDERR_FILENO) != 0, printed = false;  // the progress line, once a second
  std::uint64_t last = 0, last_w = 0, last_h = 0;
  auto tick = [&](std::uint64_t now) {
    if (!progress || now < last + kSecond) return;
    std::uint64_t w = 0, rd = 0, h = 0, full = 0;
    for (unsigned i = 0; i < o.threads; ++i) {
      w += cb->producer[i].progress_ops.load(std::memory_order_relaxed);
      rd += cb->consumer[i].progress_ops.load(std::memory_order_relaxed);
      h += cb->consumer[i].progress_hits.load(std::memory_order_relaxed);
      full += cb->producer[i].counter[kWriteFull];
    }
    double dt = last ? double(now - last) / 1e9 : 0.0;
    fmt::print(stderr, "{}[{}] {:<7} {:5.1f}s  writes {} ({:.0f}/s)  reads {}, hits {} ({:.0f}/s)  full {}   {}",
               tty ? "\r" : "", r->name, cb->producers_done ? "final" : cb->phase == 2 ? "phase 2" : "phase 1",
               double(now - cb->t0_ns) / 1e9, w, dt > 0 ? double(w - last_w) / dt : 0.0, rd, h,
               dt > 0 ? double(h - last_h) / dt : 0.0, full, tty ? "" : "\n");
    last = now, last_w = w, last_h = h, printed = true;
  };
  std::uint64_t limit = cb->t0_ns + 2 * o.duration_ns + o.delay_ms * 1'000'000ULL + 120 * kSecond;
  std::uint64_t abort_seen = 0;
  bool killed = false;
  for (; !reap(); usleep(20'000)) {
    std::uint64_t now = now_ns();
    tick(now);
    if (!killed && now > limit) {
      fail(cb, "run overran by 2 minutes: workload killed");
      usleep(2'000'000);
      killed = (reap(), kill_all());
    }
    // After an abort the other side may be blocked (e.g. in SLEEP): 10 s.
    if (abort_seen == 0 && aborted(cb)) abort_seen = now;
    if (!killed && abort_seen && now - abort_seen > 10 * kSecond) killed = kill_all();
  }
  if (printed && tty) std::fputc('\n', stderr);
  collect(cb, o, r);
  error = cb->error;
  bool clean = std::all_of(status, status + 2, [](int s) { return WIFEXITED(s) && WEXITSTATUS(s) == 0; });
  if (error.empty() && !(clean && !killed && cb->consumers_done)) error = "a workload process failed";
  if (!error.empty() && r->ok) r->ok = false, r->error = error;
  cb->~ControlBlock();
  munmap(mem, sizeof(ControlBlock));
  t.cleanup();
}

}  // namespace synchmess::bench
