// device_transport.cpp - the SynchMess ABI on any device or FUSE file that
// speaks it: the kernel module, synchmessd (CUSE or FUSE), the echo floor.
//
// Install follows the original benchmark: open the master O_RDONLY,
// IOCTL_INSTALL_GROUP, spin on access(device_path, R_OK|W_OK), open O_RDWR.
// On FUSE only 8 bytes of group_t move, so an empty device_path is replaced
// by dirname(master)/synchmessN; so is a device_path that is still not
// accessible after 10 s (e.g. a daemon answering "/dev/synch/..." for a
// mount elsewhere), with a warning on stderr.
//
// Flush: fsync(); in auto mode an EINVAL (CUSE has no fsync) switches the
// process to IOCTL_FLUSH_DELAYED_MESSAGES for good.
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "clock.h"
#include "synchmess_interface.h"
#include "transport.h"

namespace synchmess::bench {
namespace {

constexpr std::uint64_t kAccessTimeoutNs = 10'000'000'000ULL;

int neg_errno() { return -errno; }

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class DeviceGroups final : public Groups {
 public:
  DeviceGroups(std::vector<int> fds, FlushMode mode, ControlBlock* cb)
      : fds_(std::move(fds)), mode_(int(mode)), cb_(cb) {}
  ~DeviceGroups() override {
    for (int fd : fds_) close(fd);
  }

  long write(unsigned g, const void* buf, std::size_t n) override {
    ssize_t r = ::write(fds_[g], buf, n);
    return r < 0 ? neg_errno() : long(r);
  }
  long read(unsigned g, void* buf, std::size_t n) override {
    ssize_t r = ::read(fds_[g], buf, n);
    return r < 0 ? neg_errno() : long(r);
  }
  int flush(unsigned g) override {
    int mode = mode_.load(std::memory_order_relaxed);
    if (mode != int(FlushMode::kIoctl)) {
      if (fsync(fds_[g]) == 0) {
        note_method("fsync");
        return 0;
      }
      if (errno != EINVAL || mode == int(FlushMode::kFsync)) return neg_errno();
      mode_.store(int(FlushMode::kIoctl), std::memory_order_relaxed);
    }
    note_method("ioctl");
    return ioctl(fds_[g], IOCTL_FLUSH_DELAYED_MESSAGES) < 0 ? neg_errno() : 0;
  }
  int sleep(unsigned g) override {
    return ioctl(fds_[g], IOCTL_SLEEP) < 0 ? neg_errno() : 0;
  }
  long awake(unsigned g) override {
    int r = ioctl(fds_[g], IOCTL_AWAKE);
    return r < 0 ? neg_errno() : long(r);
  }
  int set_delay(unsigned g, unsigned ms) override {
    // The ioctl's size field says 8 (a pointer): on FUSE the kernel copies
    // 8 bytes from the argument, so give it 8 readable bytes.
    unsigned arg[2] = {ms, 0};
    return ioctl(fds_[g], IOCTL_SET_SEND_DELAY, arg) < 0 ? neg_errno() : 0;
  }
  int revoke(unsigned g) override {
    return ioctl(fds_[g], IOCTL_REVOKE_DELAYED_MESSAGES) < 0 ? neg_errno() : 0;
  }

 private:
  // Records the first method that worked (the consumer process flushes).
  void note_method(const char* name) {
    if (noted_.exchange(true, std::memory_order_relaxed)) return;
    std::strncpy(cb_->flush_method, name, sizeof(cb_->flush_method) - 1);
  }

  std::vector<int> fds_;
  std::atomic<int> mode_;
  std::atomic<bool> noted_{false};
  ControlBlock* cb_;
};

class DeviceTransport final : public Transport {
 public:
  DeviceTransport(std::string master, TransportOptions o, FlushMode flush)
      : master_(std::move(master)), o_(o), flush_(flush) {}

  std::string kind() const override { return "synchmess"; }
  std::string description() const override {
    return "SynchMess ABI at " + master_;
  }
  bool has_delay() const override { return true; }
  std::string prepare() override {
    if (access(master_.c_str(), R_OK) != 0)
      return "master " + master_ + ": " + std::strerror(errno);
    return "";
  }
  void cleanup() override {}

  std::unique_ptr<Groups> attach(ControlBlock* cb, ThreadStats* setup,
                                 std::string* error) override {
    int master = open(master_.c_str(), O_RDONLY | O_CLOEXEC);
    if (master < 0) {
      *error = "open " + master_ + ": " + std::strerror(errno);
      return nullptr;
    }
    std::vector<int> fds;
    bool use_fallback = false;  // device_path did not work for an earlier group
    for (unsigned g = 0; g < o_.groups; ++g) {
      group_t grp;
      std::memset(&grp, 0, sizeof(grp));
      grp.descriptor = g + 1;
      std::uint64_t t = now_ns();
      int r = ioctl(master, IOCTL_INSTALL_GROUP, &grp);
      std::uint64_t t2 = now_ns();
      if (r < 0) {
        *error = "IOCTL_INSTALL_GROUP " + std::to_string(g + 1) + ": " +
                 std::strerror(errno);
        break;
      }
      setup->hist[kInstall].record(t2 - t);
      std::string fallback =
          dir_of(master_) + "/synchmess" + std::to_string(g + 1);
      std::string path(grp.device_path,
                       strnlen(grp.device_path, sizeof(grp.device_path)));
      if (path.empty() || use_fallback) path = fallback;
      while (access(path.c_str(), R_OK | W_OK) != 0) {
        if (now_ns() - t2 <= kAccessTimeoutNs) {
          sched_yield();
          continue;
        }
        if (path == fallback) break;
        std::fprintf(stderr,
                     "synchmess-bench: %s never became accessible; using %s "
                     "(and dirname(master)/synchmessN from now on)\n",
                     path.c_str(), fallback.c_str());
        path = fallback;
        use_fallback = true;
      }
      int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
      std::uint64_t t3 = now_ns();
      if (fd < 0) {
        *error = "open " + path + ": " + std::strerror(errno);
        break;
      }
      setup->hist[kOpen].record(t3 - t2);
      fds.push_back(fd);
    }
    close(master);
    if (fds.size() != o_.groups) {
      for (int fd : fds) close(fd);
      return nullptr;
    }
    return std::make_unique<DeviceGroups>(std::move(fds), flush_, cb);
  }

 private:
  std::string master_;
  TransportOptions o_;
  FlushMode flush_;
};

}  // namespace

std::unique_ptr<Transport> make_device_transport(const std::string& master,
                                                 const TransportOptions& o,
                                                 FlushMode flush) {
  return std::make_unique<DeviceTransport>(master, o, flush);
}

}  // namespace synchmess::bench
