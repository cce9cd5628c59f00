// workload.cpp - see workload.h.
//
// Hot path: every operation takes two CLOCK_MONOTONIC readings around the
// system call and records into the calling thread's own ThreadStats (no
// locks, no allocation).  A full group (EPERM on the device, EAGAIN on a
// pipe or queue) is counted, followed by sched_yield(), and the same
// message (same sequence number) is retried on another random group.
#include "workload.h"

#include <sched.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "clock.h"
#include "message.h"
#include "seen_set.h"

namespace synchmess::bench {
namespace {

constexpr std::uint64_t kAwakeTimeoutNs = 60'000'000'000ULL;
constexpr unsigned kMaxConsecutiveErrors = 1000;

// xorshift64*: a per-thread generator (rand() takes a lock).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed ? seed : 0x9E3779B97F4A7C15ULL) {}
  std::uint32_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return std::uint32_t((s_ * 0x2545F4914F6CDD1DULL) >> 32);
  }
 private:
  std::uint64_t s_;
};

void bump(std::atomic<std::uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void fail(ControlBlock* cb, const std::string& what) {
  // First error wins; a racing second writer only loses its text.
  if (cb->error[0] == '\0')
    std::strncpy(cb->error, what.c_str(), sizeof(cb->error) - 1);
  cb->abort.store(1, std::memory_order_release);
}

bool aborted(const ControlBlock* cb) {
  return cb->abort.load(std::memory_order_relaxed) != 0;
}

// Attach, report ready, wait for the parent's go.  Null on failure.
std::unique_ptr<Groups> attach_and_wait(Transport& t, ControlBlock* cb,
                                        ThreadStats* setup) {
  std::string error;
  std::unique_ptr<Groups> groups = t.attach(cb, setup, &error);
  if (!groups) {
    fail(cb, t.kind() + ": " + error);
    return nullptr;
  }
  cb->ready.fetch_add(1, std::memory_order_acq_rel);
  while (cb->go.load(std::memory_order_acquire) == 0) {
    if (aborted(cb)) return nullptr;
    usleep(1000);
  }
  return groups;
}

class Producer {
 public:
  Producer(unsigned id, Groups& g, const WorkloadOptions& o, ControlBlock* cb,
           std::barrier<>& sync, bool has_delay)
      : id_(id), g_(g), o_(o), cb_(cb), st_(cb->producer[id]), sync_(sync),
        rng_(now_ns() * (id + 1) + 0x51ED), buf_(o.message_size),
        has_delay_(has_delay) {}

  void run() {
    write_until(cb_->deadline1_ns, kWrite1);
    sync_.arrive_and_wait();
    if (id_ == 0 && has_delay_) set_delays();
    sync_.arrive_and_wait();
    std::uint64_t t = now_ns();
    int r = aborted(cb_) ? -ECANCELED : g_.sleep(0);
    std::uint64_t woke = now_ns();
    if (r < 0) {
      ++st_.other_errors;
      st_.last_errno = -r;
      fail(cb_, std::string("IOCTL_SLEEP: ") + std::strerror(-r));
    } else {
      st_.hist[kSleep].record(woke - t);
      cb_->woke_ns[id_] = woke;
    }
    write_until(woke + o_.duration_ns, kWrite2);
    cb_->written[id_] = seq_;
  }

 private:
  void write_until(std::uint64_t deadline, Op op) {
    bool retry = false;
    unsigned consecutive_errors = 0;
    std::span<std::byte> msg(buf_);
    while (!aborted(cb_)) {
      std::uint64_t t = now_ns();
      if (t >= deadline) break;
      if (retry) restamp_message(msg, t); else encode_message(msg, id_, seq_, t);
      unsigned grp = rng_.next() % o_.groups;
      t = now_ns();
      long r = g_.write(grp, msg.data(), msg.size());
      std::uint64_t t2 = now_ns();
      if (r == long(msg.size())) {
        st_.hist[op].record(t2 - t);
        ++seq_;
        retry = false;
        consecutive_errors = 0;
        bump(st_.progress_ops);
        continue;
      }
      retry = true;
      if (r == -EPERM || r == -EAGAIN) {
        ++st_.write_full;
        sched_yield();
        continue;
      }
      ++st_.write_errors;
      st_.last_errno = r < 0 ? int(-r) : 0;
      if (++consecutive_errors >= kMaxConsecutiveErrors)
        fail(cb_, std::string("write keeps failing: ") +
                      (r < 0 ? std::strerror(int(-r)) : "short write"));
    }
  }

  void set_delays() {
    for (unsigned grp = 0; grp < o_.groups; ++grp) {
      std::uint64_t t = now_ns();
      int r = g_.set_delay(grp, o_.delay_ms);
      std::uint64_t t2 = now_ns();
      if (r < 0) {
        ++st_.other_errors;
        st_.last_errno = -r;
        fail(cb_, std::string("IOCTL_SET_SEND_DELAY: ") + std::strerror(-r));
        return;
      }
      st_.hist[kSetDelay].record(t2 - t);
    }
  }

  unsigned id_;
  Groups& g_;
  const WorkloadOptions& o_;
  ControlBlock* cb_;
  ThreadStats& st_;
  std::barrier<>& sync_;
  Rng rng_;
  std::vector<std::byte> buf_;
  bool has_delay_;
  std::uint64_t seq_ = 0;
};

// Reads, verifies and marks; shared by the consumer threads and the drain.
class Reader {
 public:
  Reader(Groups& g, const WorkloadOptions& o, SeenSet& seen, ThreadStats& st)
      : g_(g), o_(o), seen_(seen), st_(st), buf_(o.message_size + 4096) {}

  // One read of group grp.  Returns the read's result (0 = empty).
  long read_one(unsigned grp, Op hit, Op empty, Op deliver) {
    std::uint64_t t = now_ns();
    long r = g_.read(grp, buf_.data(), buf_.size());
    std::uint64_t t2 = now_ns();
    bump(st_.progress_ops);
    if (r == 0) {
      st_.hist[empty].record(t2 - t);
      return 0;
    }
    if (r < 0) {
      ++st_.read_errors;
      st_.last_errno = int(-r);
      return r;
    }
    st_.hist[hit].record(t2 - t);
    bump(st_.progress_hits);
    MessageTrailer m;
    if (!verify_message(std::span<const std::byte>(buf_.data(), std::size_t(r)),
                        o_.message_size, &m)) {
      ++st_.corrupt;
    } else if (!seen_.mark(m.producer, m.seq)) {
      ++st_.duplicates;
    } else if (deliver != kOpCount && t2 > m.sent_ns) {
      st_.hist[deliver].record(t2 - m.sent_ns);
    }
    return r;
  }

 private:
  Groups& g_;
  const WorkloadOptions& o_;
  SeenSet& seen_;
  ThreadStats& st_;
  std::vector<std::byte> buf_;
};

class Consumer {
 public:
  Consumer(unsigned id, Groups& g, const WorkloadOptions& o, ControlBlock* cb,
           SeenSet& seen, bool has_delay)
      : id_(id), g_(g), o_(o), cb_(cb), st_(cb->consumer[id]),
        reader_(g, o, seen, st_), rng_(now_ns() * (id + 7) + 0xC0FE),
        has_delay_(has_delay) {}

  void run() {
    if (id_ != 0) {
      read_while([&] { return !producers_done(); });
      return;
    }
    read_while([&] { return now_ns() < cb_->deadline1_ns; });
    if (!wake_producers()) return;
    if (has_delay_) {
      flush_while_producing();
    } else {
      read_while([&] { return !producers_done(); });
    }
  }

 private:
  bool producers_done() const {
    return cb_->producers_done.load(std::memory_order_acquire) != 0 ||
           aborted(cb_);
  }

  template <typename Cond>
  void read_while(Cond cond) {
    unsigned consecutive_errors = 0;
    while (cond() && !aborted(cb_)) {
      bool p2 = cb_->phase.load(std::memory_order_relaxed) == 2;
      long r = reader_.read_one(rng_.next() % o_.groups,
                                p2 ? kReadHit2 : kReadHit1,
                                p2 ? kReadEmpty2 : kReadEmpty1,
                                p2 ? kDeliver2 : kDeliver1);
      consecutive_errors = r < 0 ? consecutive_errors + 1 : 0;
      if (consecutive_errors >= kMaxConsecutiveErrors)
        fail(cb_, std::string("read keeps failing: ") + std::strerror(int(-r)));
    }
  }

  bool wake_producers() {
    unsigned woken = 0;
    std::uint64_t start = now_ns();
    while (woken < o_.threads && !aborted(cb_)) {
      std::uint64_t t = now_ns();
      if (t - start > kAwakeTimeoutNs) {
        fail(cb_, "AWAKE woke " + std::to_string(woken) + " of " +
                      std::to_string(o_.threads) + " sleepers in 60 s");
        return false;
      }
      long r = g_.awake(0);
      std::uint64_t t2 = now_ns();
      st_.hist[kAwake].record(t2 - t);
      cb_->awake_calls.fetch_add(1, std::memory_order_relaxed);
      if (r < 0) {
        ++st_.other_errors;
        st_.last_errno = int(-r);
        fail(cb_, std::string("IOCTL_AWAKE: ") + std::strerror(int(-r)));
        return false;
      }
      if (r > 0) {
        unsigned k = cb_->awake_ok_count;
        if (k < kMaxThreads) {
          cb_->awake_ok_start_ns[k] = t;
          cb_->awake_ok_end_ns[k] = t2;
          cb_->awake_ok_count = k + 1;
        }
        woken += unsigned(r);
      }
    }
    cb_->phase2_start_ns.store(now_ns(), std::memory_order_relaxed);
    cb_->phase.store(2, std::memory_order_release);
    return !aborted(cb_);
  }

  void flush_while_producing() {
    while (!producers_done()) {
      unsigned grp = rng_.next() % o_.groups;
      std::uint64_t t = now_ns();
      int r = g_.flush(grp);
      std::uint64_t t2 = now_ns();
      bump(st_.progress_ops);
      if (r < 0) {
        ++st_.other_errors;
        st_.last_errno = -r;
        fail(cb_, std::string("flush: ") + std::strerror(-r));
        return;
      }
      st_.hist[kFlush].record(t2 - t);
    }
  }

  unsigned id_;
  Groups& g_;
  const WorkloadOptions& o_;
  ControlBlock* cb_;
  ThreadStats& st_;
  Reader reader_;
  Rng rng_;
  bool has_delay_;
};

// Consumer process, after every thread stopped and the producers are done.
void final_step(Groups& g, const WorkloadOptions& o, ControlBlock* cb,
                SeenSet& seen, bool has_delay) {
  ThreadStats& st = cb->final_step;
  auto timed = [&](Op op, auto&& call, const char* what) {
    for (unsigned grp = 0; grp < o.groups; ++grp) {
      std::uint64_t t = now_ns();
      int r = call(grp);
      std::uint64_t t2 = now_ns();
      if (r < 0) {
        ++st.other_errors;
        st.last_errno = -r;
        fail(cb, std::string(what) + ": " + std::strerror(-r));
        return;
      }
      st.hist[op].record(t2 - t);
    }
  };
  if (has_delay && o.final_mode == FinalMode::kFlush)
    timed(kFlush, [&](unsigned grp) { return g.flush(grp); }, "final flush");
  if (has_delay)
    timed(kRevoke, [&](unsigned grp) { return g.revoke(grp); },
          "IOCTL_REVOKE_DELAYED_MESSAGES");
  Reader reader(g, o, seen, st);
  for (unsigned grp = 0; grp < o.groups; ++grp) {
    while (reader.read_one(grp, kDrainRead, kDrainRead, kOpCount) > 0)
      ++cb->drained;
  }
  if (has_delay)
    timed(kSetDelay, [&](unsigned grp) { return g.set_delay(grp, 0); },
          "IOCTL_SET_SEND_DELAY 0");
}

}  // namespace

int run_producers(Transport& t, const WorkloadOptions& o, ControlBlock* cb) {
  std::unique_ptr<Groups> g = attach_and_wait(t, cb, &cb->setup[0]);
  if (!g) return 1;
  std::barrier<> sync(std::ptrdiff_t(o.threads));
  std::vector<std::unique_ptr<Producer>> producers;
  for (unsigned i = 0; i < o.threads; ++i)
    producers.push_back(
        std::make_unique<Producer>(i, *g, o, cb, sync, t.has_delay()));
  std::vector<std::thread> threads;
  for (auto& p : producers) threads.emplace_back([&p] { p->run(); });
  for (auto& th : threads) th.join();
  cb->producers_done_ns = now_ns();
  cb->producers_done.store(1, std::memory_order_release);
  return 0;
}

int run_consumers(Transport& t, const WorkloadOptions& o, ControlBlock* cb) {
  std::unique_ptr<Groups> g = attach_and_wait(t, cb, &cb->setup[1]);
  if (!g) return 1;
  SeenSet seen(o.threads);
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (unsigned i = 0; i < o.threads; ++i)
    consumers.push_back(std::make_unique<Consumer>(i, *g, o, cb, seen,
                                                   t.has_delay()));
  std::vector<std::thread> threads;
  for (auto& c : consumers) threads.emplace_back([&c] { c->run(); });
  for (auto& th : threads) th.join();
  while (cb->producers_done.load(std::memory_order_acquire) == 0) {
    if (aborted(cb)) return 1;
    usleep(1000);
  }
  std::uint64_t final_start = now_ns();
  final_step(*g, o, cb, seen, t.has_delay());
  std::vector<std::uint64_t> written(cb->written, cb->written + o.threads);
  cb->check = seen.check(written);
  cb->out_of_range = seen.out_of_range();
  cb->final_start_ns = final_start;
  cb->consumers_done_ns = now_ns();
  cb->consumers_done.store(1, std::memory_order_release);
  return aborted(cb) ? 1 : 0;
}

}  // namespace synchmess::bench
