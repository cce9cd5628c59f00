// pairs.cpp - the per-request cost: client threads doing write+read pairs
// (see bench.h run_pairs and README.md "Write+read pairs").
//
// Each client thread installs and opens its own group (thread i: group
// i + 1), then, until the deadline, writes one message and reads it back,
// timing the pair with CLOCK_MONOTONIC into its own histogram.  One group
// per thread: the kernel serialises direct-I/O writes to one file, so
// threads sharing a group would measure that lock, not the server.
#include <dlfcn.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench.h"
#include "synchmess_interface.h"

namespace synchmess::bench {
namespace {

// Opens group `descriptor` of the ABI at master: install, then the
// returned path or, when FUSE moved only 8 bytes, dirname(master)/synchmessN.
int open_group(const std::string& master, unsigned descriptor, std::string& error) {
  int m = ::open(master.c_str(), O_RDONLY | O_CLOEXEC);
  if (m < 0) return error = "open " + master + ": " + std::strerror(errno), -1;
  group_t g{};
  g.descriptor = descriptor;
  int rc = ::ioctl(m, IOCTL_INSTALL_GROUP, &g);
  int err = errno;
  ::close(m);
  if (rc < 0) return error = fmt::format("IOCTL_INSTALL_GROUP {}: {}", descriptor, std::strerror(err)), -1;
  std::string path(g.device_path, strnlen(g.device_path, sizeof g.device_path));
  std::string fallback = std::filesystem::path(master).parent_path() / fmt::format("synchmess{}", descriptor);
  if (path.empty() || ::access(path.c_str(), R_OK | W_OK) != 0) path = fallback;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) error = "open " + path + ": " + std::strerror(errno);
  return fd;
}

// One client's channel: a group (device: system calls; fast: the C
// library's calls, which the preload serves), a pipe, or a POSIX queue.
struct Channel {
  enum Kind { kSyscall, kLibc, kPipe, kMqueue } kind = kSyscall;
  int fd = -1, fd2 = -1;  // group: fd; pipe: read end, write end
  mqd_t mq = mqd_t(-1);
  ssize_t write(const void* b, std::size_t n) const {
    switch (kind) {
      case kSyscall: return ::syscall(SYS_write, fd, b, n);
      case kLibc: return ::write(fd, b, n);
      case kPipe: return ::write(fd2, b, n);
      case kMqueue: return mq_send(mq, static_cast<const char*>(b), n, 0) == 0 ? ssize_t(n) : -1;
    }
    return -1;
  }
  ssize_t read(void* b, std::size_t n) const {
    switch (kind) {
      case kSyscall: return ::syscall(SYS_read, fd, b, n);
      case kLibc: return ::read(fd, b, n);
      case kPipe: return ::read(fd, b, n);
      case kMqueue: return mq_receive(mq, static_cast<char*>(b), n, nullptr);
    }
    return -1;
  }
  void close() const {
    if (fd >= 0) ::close(fd);
    if (fd2 >= 0) ::close(fd2);
    if (mq != mqd_t(-1)) mq_close(mq);
  }
};

Channel open_channel(const std::string& target, const std::string& master, unsigned i, std::size_t size,
                     std::string& error) {
  Channel c;
  if (target == "pipe") {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return error = std::string("pipe: ") + std::strerror(errno), c;
    c.kind = Channel::kPipe, c.fd = p[0], c.fd2 = p[1];
  } else if (target == "mqueue") {
    std::string name = fmt::format("/synchmess-bench-pair-{}-{}", getpid(), i);
    mq_attr attr{};
    attr.mq_maxmsg = 1, attr.mq_msgsize = long(size + 4096);
    c.kind = Channel::kMqueue;
    c.mq = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (c.mq == mqd_t(-1)) error = "mq_open " + name + ": " + std::strerror(errno);
    mq_unlink(name.c_str());
  } else {
    c.kind = target == "fast" ? Channel::kLibc : Channel::kSyscall;
    c.fd = open_group(master, i + 1, error);
  }
  return c;
}

}  // namespace

bool fast_path_loaded() {
  Dl_info info{};
  void* fn = dlsym(RTLD_DEFAULT, "write");
  return fn && dladdr(fn, &info) && info.dli_fname && std::strstr(info.dli_fname, "libsynchmess-fast.so");
}

std::string run_pairs(const std::string& target, const std::string& master, unsigned clients, std::size_t size,
                      std::uint64_t duration_ns, LogHistogram* out, std::uint64_t* pairs) {
  std::vector<Channel> fds;
  std::string error;
  if (target == "fast" && !fast_path_loaded()) return "libsynchmess-fast.so is not loaded: run under synchmess-fast";
  for (unsigned i = 0; i < clients && error.empty(); ++i) {
    Channel c = open_channel(target, master, i, size, error);
    if (error.empty()) fds.push_back(c);
  }
  // Leftovers of an earlier run would make reads return older messages.
  std::vector<unsigned char> drain(size + 4096);
  for (const Channel& c : fds)
    while (error.empty() && c.kind <= Channel::kLibc && c.read(drain.data(), drain.size()) > 0) {}
  std::vector<LogHistogram> hists(error.empty() ? clients : 0);
  std::vector<std::string> errors(clients);
  std::atomic<std::uint64_t> done{0};
  std::barrier start(static_cast<std::ptrdiff_t>(hists.size()));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < hists.size(); ++i) {
    threads.emplace_back([&, i] {
      std::vector<unsigned char> msg(size), got(size + 4096);
      std::uint64_t n = 0;
      start.arrive_and_wait();
      const std::uint64_t deadline = now_ns() + duration_ns;
      for (std::uint64_t t = now_ns(); t < deadline; t = now_ns()) {
        std::memcpy(msg.data(), &n, std::min(sizeof n, size));
        ssize_t w = fds[i].write(msg.data(), size);
        ssize_t r = w == ssize_t(size) ? fds[i].read(got.data(), got.size()) : -1;
        std::uint64_t t2 = now_ns();
        if (w != ssize_t(size) || r != ssize_t(size) || std::memcmp(msg.data(), got.data(), size) != 0) {
          errors[i] = fmt::format("client {}: pair {}: write {}, read {} ({})", i, n, w, r,
                                  w < 0 || r < 0 ? std::strerror(errno) : "wrong message");
          return;
        }
        hists[i].record(t2 - t);
        ++n;
      }
      done.fetch_add(n, std::memory_order_relaxed);
    });
  }
  for (auto& t : threads) t.join();
  for (const Channel& c : fds) c.close();
  for (const auto& e : errors)
    if (error.empty() && !e.empty()) error = e;
  for (const auto& h : hists) out->merge(h);
  *pairs += done.load();
  return error;
}

std::string run_ioctls(const std::string& master, std::uint64_t duration_ns, LogHistogram* install,
                       LogHistogram* plain) {
  std::string error;
  int fd = open_group(master, 1, error);
  if (fd < 0) return error;
  int m = ::open(master.c_str(), O_RDONLY | O_CLOEXEC);
  if (m < 0) {
    ::close(fd);
    return "open " + master + ": " + std::strerror(errno);
  }
  const std::uint64_t deadline = now_ns() + duration_ns;
  for (std::uint64_t t = now_ns(); t < deadline && error.empty(); t = now_ns()) {
    group_t g{};
    g.descriptor = 1;
    if (::ioctl(m, IOCTL_INSTALL_GROUP, &g) < 0) {
      error = std::string("IOCTL_INSTALL_GROUP: ") + std::strerror(errno);
      break;
    }
    std::uint64_t t2 = now_ns();
    install->record(t2 - t);
    if (::ioctl(fd, IOCTL_AWAKE) < 0) error = std::string("IOCTL_AWAKE: ") + std::strerror(errno);
    else plain->record(now_ns() - t2);
  }
  ::close(m);
  ::close(fd);
  return error;
}

}  // namespace synchmess::bench
