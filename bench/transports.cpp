// transports.cpp - the targets of README.md: the SynchMess ABI at a master
// (device, floor), installed as the original did; pipes made before fork;
// POSIX queues each process mq_open()s ("install").  On FUSE only 8 bytes
// of group_t move, so an empty device_path (or one still inaccessible after
// 10 s) is replaced by dirname(master)/synchmessN.
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "bench.h"
#include "synchmess_interface.h"

namespace synchmess::bench {
namespace {

long ret(long r) { return r < 0 ? -errno : r; }

class DeviceTransport final : public Transport {
 public:
  // fast: messages through the C library's read/write (libsynchmess-fast.so
  // when the bench runs under synchmess-fast); else through system calls,
  // so the device is measured even with the library loaded.
  DeviceTransport(std::string master, const WorkloadOptions& o, bool fast)
      : master_(std::move(master)), o_(o), fast_(fast) {
    kind = "synchmess", has_delay = true;
    description = "SynchMess ABI at " + master_ + (fast ? ", read/write through libsynchmess-fast.so" : "");
  }
  std::string prepare() override {
    if (fast_ && !fast_path_loaded()) return "libsynchmess-fast.so is not loaded: run under synchmess-fast";
    return access(master_.c_str(), R_OK) == 0 ? "" : "master " + master_ + ": " + std::strerror(errno);
  }
  std::string attach(ControlBlock* cb, ThreadStats* setup) override {
    cb_ = cb;
    int master = open(master_.c_str(), O_RDONLY | O_CLOEXEC);
    if (master < 0) return "open " + master_ + ": " + std::strerror(errno);
    bool use_fallback = false;  // device_path did not work for an earlier group
    for (unsigned g = 0; g < o_.groups; ++g) {
      group_t grp{};
      grp.descriptor = g + 1;
      std::uint64_t t = now_ns();
      if (ioctl(master, IOCTL_INSTALL_GROUP, &grp) < 0)
        return fmt::format("IOCTL_INSTALL_GROUP {}: {}", g + 1, std::strerror(errno));
      std::uint64_t t2 = now_ns();
      setup->hist[kInstall].record(t2 - t);
      std::string fallback = std::filesystem::path(master_).parent_path() / fmt::format("synchmess{}", g + 1);
      std::string path(grp.device_path, strnlen(grp.device_path, sizeof(grp.device_path)));
      if (path.empty() || use_fallback) path = fallback;
      while (access(path.c_str(), R_OK | W_OK) != 0) {
        if (now_ns() - t2 <= 10'000'000'000ULL) {
          sched_yield();
        } else if (path == fallback) {
          break;
        } else {
          fmt::print(stderr, "synchmess-bench: {} never became accessible; using {} "
                     "(and dirname(master)/synchmessN from now on)\n", path, fallback);
          path = fallback;
          use_fallback = true;
        }
      }
      fds_.push_back(open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (fds_.back() < 0) return "open " + path + ": " + std::strerror(errno);
      setup->hist[kOpen].record(now_ns() - t2);
    }
    return "";  // the fds close when the workload process exits
  }
  long write(unsigned g, const void* buf, std::size_t n) override {
    return ret(fast_ ? ::write(fds_[g], buf, n) : ::syscall(SYS_write, fds_[g], buf, n));
  }
  long read(unsigned g, void* buf, std::size_t n) override {
    return ret(fast_ ? ::read(fds_[g], buf, n) : ::syscall(SYS_read, fds_[g], buf, n));
  }
  int flush(unsigned g) override {
    if (!use_ioctl_.load(std::memory_order_relaxed)) {
      if (fsync(fds_[g]) == 0) return note("fsync"), 0;
      if (errno != EINVAL || o_.flush == "fsync") return -errno;
      use_ioctl_.store(true, std::memory_order_relaxed);  // auto: CUSE has no fsync
    }
    note("ioctl");
    return int(ret(ioctl(fds_[g], IOCTL_FLUSH_DELAYED_MESSAGES)));
  }
  int sleep(unsigned g) override { return int(ret(ioctl(fds_[g], IOCTL_SLEEP))); }
  long awake(unsigned g) override { return ret(ioctl(fds_[g], IOCTL_AWAKE)); }
  int set_delay(unsigned g, unsigned ms) override {
    unsigned arg[2] = {ms, 0};  // the ioctl's size says 8: FUSE copies 8 bytes
    return int(ret(ioctl(fds_[g], IOCTL_SET_SEND_DELAY, arg)));
  }
  int revoke(unsigned g) override { return int(ret(ioctl(fds_[g], IOCTL_REVOKE_DELAYED_MESSAGES))); }

 private:
  void note(const char* method) {  // the first method that worked
    if (!noted_.exchange(true, std::memory_order_relaxed))
      std::strncpy(cb_->flush_method, method, sizeof(cb_->flush_method) - 1);
  }
  std::string master_;
  const WorkloadOptions& o_;
  bool fast_;
  std::vector<int> fds_;
  std::atomic<bool> use_ioctl_{o_.flush == "ioctl"};
  std::atomic<bool> noted_{false};
  ControlBlock* cb_ = nullptr;
};

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, nullptr, nullptr, 0);
}

// pipe (rd_/wr_ are the pipes' ends) or mqueue (rd_ = wr_ = the queues).
class BaselineTransport final : public Transport {
 public:
  BaselineTransport(bool mq, const WorkloadOptions& o) : mq_(mq), o_(o) { kind = mq ? "mqueue" : "pipe"; }
  ~BaselineTransport() override { cleanup(); }
  std::string prepare() override {
    if (!mq_) {
      int cap = 0;
      for (unsigned g = 0; g < o_.groups; ++g) {
        int p[2];
        if (pipe2(p, O_DIRECT | O_NONBLOCK | O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
        if ((cap = fcntl(p[1], F_SETPIPE_SZ, 1 << 20)) < 0) cap = fcntl(p[1], F_GETPIPE_SZ);
        rd_.push_back(p[0]);
        wr_.push_back(p[1]);
      }
      description = fmt::format("one O_DIRECT|O_NONBLOCK pipe per group, capacity {} bytes ({} packets)",
                                cap, cap / 4096);
      return "";
    }
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MSGQUEUE, &unlimited);  // best effort
    long system_max = 10;  // above fs.mqueue.msg_max needs CAP_SYS_RESOURCE
    std::ifstream("/proc/sys/fs/mqueue/msg_max") >> system_max;
    std::string err;
    for (long maxmsg : {1024L, system_max}) {
      mq_attr attr{};
      attr.mq_maxmsg = maxmsg;
      attr.mq_msgsize = long(o_.message_size);
      err.clear();
      for (unsigned g = 0; g < o_.groups && err.empty(); ++g) {
        std::string name = fmt::format("/synchmess-bench-{}-{}", getpid(), g + 1);
        mqd_t d = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
        if (d == mqd_t(-1)) err = "mq_open " + name + ": " + std::strerror(errno);
        else mq_close(d), names_.push_back(name);
      }
      description = fmt::format("one POSIX message queue per group, maxmsg {}, msgsize {}", maxmsg, o_.message_size);
      if (err.empty()) return "";
      cleanup();
    }
    return err;
  }
  std::string attach(ControlBlock* cb, ThreadStats* setup) override {
    cb_ = cb;
    for (const std::string& name : mq_ ? names_ : std::vector<std::string>{}) {  // the queues' "install"
      std::uint64_t t = now_ns();
      mqd_t d = mq_open(name.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (d == mqd_t(-1)) return "mq_open " + name + ": " + std::strerror(errno);
      setup->hist[kInstall].record(now_ns() - t);
      rd_.push_back(d);
    }
    if (mq_) wr_ = rd_;
    return "";
  }
  void cleanup() override {
    for (const std::string& name : names_) mq_unlink(name.c_str());
    for (int fd : rd_) close(fd);
    for (int fd : wr_) close(fd);
    names_.clear(), rd_.clear(), wr_.clear();
  }
  long write(unsigned g, const void* buf, std::size_t n) override {
    if (!mq_) return ret(::write(wr_[g], buf, n));
    return mq_send(wr_[g], static_cast<const char*>(buf), n, 0) == 0 ? long(n) : -errno;
  }
  long read(unsigned g, void* buf, std::size_t n) override {
    long r = mq_ ? mq_receive(rd_[g], static_cast<char*>(buf), n, nullptr) : ::read(rd_[g], buf, n);
    return r >= 0 ? r : errno == EAGAIN ? 0 : -errno;
  }
  // Load the generation before announcing the wait, so an AWAKE that counts
  // this sleeper always bumps a generation it will see.
  int sleep(unsigned) override {
    std::uint32_t gen = cb_->futex_gen.load(std::memory_order_acquire);
    cb_->futex_waiting.fetch_add(1, std::memory_order_acq_rel);
    while (cb_->futex_gen.load(std::memory_order_acquire) == gen) futex(&cb_->futex_gen, FUTEX_WAIT, gen);
    return 0;
  }
  long awake(unsigned) override {
    std::uint32_t n = cb_->futex_waiting.exchange(0, std::memory_order_acq_rel);
    if (n > 0) {
      cb_->futex_gen.fetch_add(1, std::memory_order_acq_rel);
      futex(&cb_->futex_gen, FUTEX_WAKE, INT_MAX);
    }
    return long(n);
  }

 private:
  bool mq_;
  const WorkloadOptions& o_;
  std::vector<std::string> names_;
  std::vector<int> rd_, wr_;
  ControlBlock* cb_ = nullptr;
};

}  // namespace

std::unique_ptr<Transport> make_transport(const std::string& name, const std::string& master,
                                          const WorkloadOptions& o) {
  if (name == "pipe" || name == "mqueue") return std::make_unique<BaselineTransport>(name == "mqueue", o);
  return std::make_unique<DeviceTransport>(master, o, name == "fast");
}

}  // namespace synchmess::bench
