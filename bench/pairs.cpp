// pairs.cpp - the per-request cost: client threads doing write+read pairs
// (see bench.h run_pairs and README.md "Write+read pairs").
//
// Each client thread installs and opens its own group (thread i: group
// i + 1), then, until the deadline, writes one message and reads it back,
// timing the pair with CLOCK_MONOTONIC into its own histogram.  One group
// per thread: the kernel serialises direct-I/O writes to one file, so
// threads sharing a group would measure that lock, not the server.
#include <fcntl.h>
#include <sys/ioctl.h>
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

}  // namespace

std::string run_pairs(const std::string& master, unsigned clients, std::size_t size, std::uint64_t duration_ns,
                      LogHistogram* out, std::uint64_t* pairs) {
  std::vector<int> fds;
  std::string error;
  for (unsigned i = 0; i < clients && error.empty(); ++i) {
    int fd = open_group(master, i + 1, error);
    if (fd >= 0) fds.push_back(fd);
  }
  // Leftovers of an earlier run would make reads return older messages.
  std::vector<unsigned char> drain(size + 4096);
  for (int fd : fds)
    while (error.empty() && ::read(fd, drain.data(), drain.size()) > 0) {}
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
        ssize_t w = ::write(fds[i], msg.data(), size);
        ssize_t r = w == ssize_t(size) ? ::read(fds[i], got.data(), got.size()) : -1;
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
  for (int fd : fds) ::close(fd);
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
