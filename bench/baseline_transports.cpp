// baseline_transports.cpp - the kernel-only baselines: pipes and POSIX
// message queues, driven with the same thread layout and message size.
//
// pipe: one pipe per group, created before fork so both processes share
//   it; O_DIRECT (packet mode: one write = one read, like a message device),
//   O_NONBLOCK (an empty pipe reads EAGAIN = "empty"; a full one writes
//   EAGAIN = "full", counted and retried like EPERM), capacity raised to
//   1 MiB with F_SETPIPE_SZ where allowed (packet mode spends one page per
//   message, so that is 256 messages, not 1 MiB of payload).
// mqueue: one queue per group, "/synchmess-bench-<pid>-<N>", O_NONBLOCK,
//   mq_msgsize = message size, mq_maxmsg 1024 (RLIMIT_MSGQUEUE raised if
//   possible), else fs.mqueue.msg_max (10 without CAP_SYS_RESOURCE).
//   Each process mq_open()s every queue itself; that is its "install".
// Neither has delays or flush: phase 2 writes are immediate and consumer 0
// reads like the others.  SLEEP/AWAKE use a futex in the shared block.
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <vector>

#include "clock.h"
#include "transport.h"

namespace synchmess::bench {
namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val,
                 nullptr, nullptr, 0);
}

class PipeGroups final : public Groups {
 public:
  PipeGroups(const std::vector<int>* rd, const std::vector<int>* wr,
             SleepBarrier* b)
      : rd_(rd), wr_(wr), barrier_(b) {}
  long write(unsigned g, const void* buf, std::size_t n) override {
    ssize_t r = ::write((*wr_)[g], buf, n);
    return r < 0 ? -errno : long(r);
  }
  long read(unsigned g, void* buf, std::size_t n) override {
    ssize_t r = ::read((*rd_)[g], buf, n);
    if (r < 0) return errno == EAGAIN ? 0 : -errno;
    return long(r);
  }
  int flush(unsigned) override { return 0; }
  int sleep(unsigned) override { return barrier_sleep(barrier_); }
  long awake(unsigned) override { return barrier_awake(barrier_); }
  int set_delay(unsigned, unsigned) override { return 0; }
  int revoke(unsigned) override { return 0; }

 private:
  const std::vector<int>* rd_;
  const std::vector<int>* wr_;
  SleepBarrier* barrier_;
};

class PipeTransport final : public Transport {
 public:
  explicit PipeTransport(TransportOptions o) : o_(o) {}
  ~PipeTransport() override { cleanup(); }
  std::string kind() const override { return "pipe"; }
  std::string description() const override {
    return "one O_DIRECT|O_NONBLOCK pipe per group, capacity " +
           std::to_string(capacity_) + " bytes (" +
           std::to_string(capacity_ / 4096) + " packets)";
  }
  bool has_delay() const override { return false; }
  std::string prepare() override {
    for (unsigned g = 0; g < o_.groups; ++g) {
      int p[2];
      if (pipe2(p, O_DIRECT | O_NONBLOCK | O_CLOEXEC) != 0)
        return std::string("pipe2: ") + std::strerror(errno);
      int cap = fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
      if (cap < 0) cap = fcntl(p[1], F_GETPIPE_SZ);
      capacity_ = cap;
      rd_.push_back(p[0]);
      wr_.push_back(p[1]);
    }
    return "";
  }
  std::unique_ptr<Groups> attach(ControlBlock* cb, ThreadStats*,
                                 std::string*) override {
    return std::make_unique<PipeGroups>(&rd_, &wr_, &cb->barrier);
  }
  void cleanup() override {
    for (int fd : rd_) close(fd);
    for (int fd : wr_) close(fd);
    rd_.clear();
    wr_.clear();
  }

 private:
  TransportOptions o_;
  std::vector<int> rd_, wr_;
  int capacity_ = 0;
};

class MqueueGroups final : public Groups {
 public:
  MqueueGroups(std::vector<mqd_t> q, SleepBarrier* b)
      : q_(std::move(q)), barrier_(b) {}
  ~MqueueGroups() override {
    for (mqd_t q : q_) mq_close(q);
  }
  long write(unsigned g, const void* buf, std::size_t n) override {
    if (mq_send(q_[g], static_cast<const char*>(buf), n, 0) != 0)
      return -errno;
    return long(n);
  }
  long read(unsigned g, void* buf, std::size_t n) override {
    ssize_t r = mq_receive(q_[g], static_cast<char*>(buf), n, nullptr);
    if (r < 0) return errno == EAGAIN ? 0 : -errno;
    return long(r);
  }
  int flush(unsigned) override { return 0; }
  int sleep(unsigned) override { return barrier_sleep(barrier_); }
  long awake(unsigned) override { return barrier_awake(barrier_); }
  int set_delay(unsigned, unsigned) override { return 0; }
  int revoke(unsigned) override { return 0; }

 private:
  std::vector<mqd_t> q_;
  SleepBarrier* barrier_;
};

class MqueueTransport final : public Transport {
 public:
  explicit MqueueTransport(TransportOptions o) : o_(o) {}
  ~MqueueTransport() override { cleanup(); }
  std::string kind() const override { return "mqueue"; }
  std::string description() const override {
    return "one POSIX message queue per group, maxmsg " +
           std::to_string(maxmsg_) + ", msgsize " +
           std::to_string(o_.message_size);
  }
  bool has_delay() const override { return false; }
  std::string prepare() override {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MSGQUEUE, &unlimited);  // best effort
    // Above fs.mqueue.msg_max needs CAP_SYS_RESOURCE: try 1024, then the
    // system's limit.
    std::string err;
    for (long maxmsg : {1024L, system_msg_max()}) {
      err = create_all(maxmsg);
      if (err.empty()) {
        maxmsg_ = maxmsg;
        return "";
      }
      cleanup();
    }
    return err;
  }
  std::unique_ptr<Groups> attach(ControlBlock* cb, ThreadStats* setup,
                                 std::string* error) override {
    std::vector<mqd_t> q;
    for (const std::string& name : names_) {
      std::uint64_t t = now_ns();
      mqd_t d = mq_open(name.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      std::uint64_t t2 = now_ns();
      if (d == mqd_t(-1)) {
        *error = "mq_open " + name + ": " + std::strerror(errno);
        for (mqd_t x : q) mq_close(x);
        return nullptr;
      }
      setup->hist[kInstall].record(t2 - t);
      q.push_back(d);
    }
    return std::make_unique<MqueueGroups>(std::move(q), &cb->barrier);
  }
  void cleanup() override {
    for (const std::string& name : names_) mq_unlink(name.c_str());
    names_.clear();
  }

 private:
  static long system_msg_max() {
    long v = 10;
    if (std::FILE* f = std::fopen("/proc/sys/fs/mqueue/msg_max", "r")) {
      if (std::fscanf(f, "%ld", &v) != 1) v = 10;
      std::fclose(f);
    }
    return v;
  }

  std::string create_all(long maxmsg) {
    for (unsigned g = 0; g < o_.groups; ++g) {
      std::string name = "/synchmess-bench-" + std::to_string(getpid()) +
                         "-" + std::to_string(g + 1);
      mq_attr attr{};
      attr.mq_maxmsg = maxmsg;
      attr.mq_msgsize = long(o_.message_size);
      mqd_t d = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                        0600, &attr);
      if (d == mqd_t(-1))
        return "mq_open " + name + ": " + std::strerror(errno);
      mq_close(d);
      names_.push_back(name);
    }
    return "";
  }

  TransportOptions o_;
  std::vector<std::string> names_;
  long maxmsg_ = 0;
};

}  // namespace

// Order matters: load the generation before announcing the wait, so an
// AWAKE that counts this sleeper always bumps a generation it will see.
int barrier_sleep(SleepBarrier* b) {
  std::uint32_t gen = b->generation.load(std::memory_order_acquire);
  b->waiting.fetch_add(1, std::memory_order_acq_rel);
  while (b->generation.load(std::memory_order_acquire) == gen)
    futex(&b->generation, FUTEX_WAIT, gen);
  return 0;
}

long barrier_awake(SleepBarrier* b) {
  std::uint32_t n = b->waiting.exchange(0, std::memory_order_acq_rel);
  if (n > 0) {
    b->generation.fetch_add(1, std::memory_order_acq_rel);
    futex(&b->generation, FUTEX_WAKE, INT_MAX);
  }
  return long(n);
}

std::unique_ptr<Transport> make_pipe_transport(const TransportOptions& o) {
  return std::make_unique<PipeTransport>(o);
}
std::unique_ptr<Transport> make_mqueue_transport(const TransportOptions& o) {
  return std::make_unique<MqueueTransport>(o);
}

}  // namespace synchmess::bench
