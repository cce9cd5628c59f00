#include "tests/fuzz/checks.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "synchmess_interface.h"
#include "tests/fuzz/record.h"
#include "tests/fuzz/shared.h"

namespace fuzz {
namespace {

constexpr std::uint64_t default_max_message = 1024, default_max_storage = 1048576;

struct Report {
  unsigned failed = 0;
  template <class... A>
  void bad(fmt::format_string<A...> f, A&&... a) {
    ++failed;
    fmt::print("FAILED {}\n", fmt::format(f, std::forward<A>(a)...));
    std::fflush(stdout);
  }
  int result() const { return failed == 0 ? 0 : 1; }
};

std::string err_text() { return fmt::format("{} ({})", errno_name(errno), std::strerror(errno)); }

int open_master(const Options& o, Report& rep) {
  int fd = ::open((o.dev_dir + "/synchmess").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) rep.bad("open master: {}", err_text());
  return fd;
}

// Installs g (checking the path written back) and opens it O_RDWR; -1 on failure.
int open_group(const Options& o, int master, unsigned g, Report& rep) {
  group_t gt{};
  gt.descriptor = g;
  if (::ioctl(master, IOCTL_INSTALL_GROUP, &gt) != 0) {
    rep.bad("INSTALL_GROUP {}: {}", g, err_text());
    return -1;
  }
  std::string want = fmt::format("{}/synchmess{}", o.dev_dir, g);
  if (std::strncmp(gt.device_path, want.c_str(), sizeof gt.device_path) != 0)
    rep.bad("INSTALL_GROUP {}: path \"{:.255}\", expected \"{}\"", g, gt.device_path, want);
  int fd = ::open(want.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) rep.bad("open {}: {}", want, err_text());
  return fd;
}

// K threads SLEEP on fd; AWAKE until they add up to K (10 s at most); then
// one more AWAKE must return 0 and every sleeper must have returned 0.
void awake_exactly(int fd, unsigned g, unsigned k, Report& rep) {
  std::atomic<unsigned> returned{0}, bad{0};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < k; ++i)
    threads.emplace_back([&] {
      if (::ioctl(fd, IOCTL_SLEEP, 0) != 0) bad.fetch_add(1);
      returned.fetch_add(1);
    });
  unsigned woken = 0;
  std::int64_t deadline = now_ms() + 10000;
  while (woken < k && now_ms() < deadline) {
    int r = ::ioctl(fd, IOCTL_AWAKE, 0);
    if (r < 0) {
      rep.bad("group {}: AWAKE: {}", g, err_text());
      break;
    }
    woken += static_cast<unsigned>(r);
    if (woken < k) ::usleep(20000);
  }
  while (returned.load() < std::min(woken, k) && now_ms() < deadline + 5000) ::usleep(10000);
  int extra = ::ioctl(fd, IOCTL_AWAKE, 0);
  if (woken != k) rep.bad("group {}: AWAKE calls woke {} in all, {} were asleep", g, woken, k);
  else if (extra != 0) rep.bad("group {}: AWAKE after all {} were woken returned {}", g, k, extra);
  else if (returned.load() != k) rep.bad("group {}: {} of {} woken sleepers returned", g, returned.load(), k);
  else if (bad.load() != 0) rep.bad("group {}: {} sleepers returned an error", g, bad.load());
  else fmt::print("ok group {}: {} sleepers, AWAKE woke exactly {}, then 0\n", g, k, woken);
  if (returned.load() == k) {
    for (auto& t : threads) t.join();
  } else {
    std::fflush(stdout);
    ::_exit(1);  // threads stuck in the daemon: leave without joining them
  }
}

// Writes one record of len bytes and reads it back exactly.
bool round_trip(int fd, unsigned g, std::size_t len, std::mt19937_64& rng, Report& rep) {
  std::vector<unsigned char> out(len), in(len + 65536);
  fill_record(out.data(), len, static_cast<std::uint32_t>(rng()));
  long w = ::write(fd, out.data(), len);
  if (w != static_cast<long>(len)) {
    rep.bad("group {}: write of {} bytes returned {} {}", g, len, w, w < 0 ? err_text() : "");
    return false;
  }
  long r = ::read(fd, in.data(), in.size());
  if (r != static_cast<long>(len) || std::memcmp(in.data(), out.data(), len) != 0) {
    rep.bad("group {}: wrote {} bytes, read back {} {}", g, len, r, r < 0 ? err_text() : "(different bytes)");
    return false;
  }
  return true;
}

}  // namespace

bool learn_params(Options& o) {
  int m = ::open((o.dev_dir + "/synchmess").c_str(), O_RDONLY | O_CLOEXEC);
  synchmess_params p{};
  if (m < 0 || ::ioctl(m, IOCTL_GET_PARAMS, &p) != 0) {
    fmt::print(stderr, "synchmess-fuzz: cannot read the parameters from {}/synchmess: {}\n", o.dev_dir, err_text());
    if (m >= 0) ::close(m);
    return false;
  }
  ::close(m);
  o.max_message = p.max_message_size;
  o.max_storage = p.max_storage_size;
  return true;
}

int warmup(const Options& o) {
  Report rep;
  std::mt19937_64 rng(42);
  int m = open_master(o, rep);
  if (m < 0) return 1;
  for (unsigned g = 1; g <= o.groups; ++g) {
    int fd = open_group(o, m, g, rep);
    if (fd < 0) continue;
    pollfd pf{fd, POLLIN, 0};
    ::poll(&pf, 1, 1);  // a poll handle, released by the first write below
    for (std::size_t len : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{100}, std::size_t{700},
                            static_cast<std::size_t>(o.max_message)})
      round_trip(fd, g, len, rng, rep);
    // Fill a quarter of the storage, then drain it: the allocator's caches.
    std::vector<unsigned char> buf(o.max_message);
    fill_record(buf.data(), buf.size(), 7);
    unsigned n = static_cast<unsigned>(o.max_storage / 4 / o.max_message);
    for (unsigned i = 0; i < n; ++i) [[maybe_unused]] auto w = ::write(fd, buf.data(), buf.size());
    std::vector<unsigned char> in(65536 + 16);
    while (::read(fd, in.data(), in.size()) > 0) {}
    unsigned ms = 1;
    if (::ioctl(fd, IOCTL_SET_SEND_DELAY, &ms) == 0) {
      [[maybe_unused]] auto w = ::write(fd, buf.data(), 16);
      ::ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES, 0);
      while (::read(fd, in.data(), in.size()) > 0) {}
      ms = 0;
      ::ioctl(fd, IOCTL_SET_SEND_DELAY, &ms);
    }
    if (g == 1) awake_exactly(fd, g, 4, rep);
    ::close(fd);
  }
  ::close(m);
  if (!rep.failed) fmt::print("ok warm-up: {} groups installed and used\n", o.groups);
  return rep.result();
}

int check_sleepers(const Options& o) {
  Report rep;
  int m = open_master(o, rep);
  if (m < 0) return 1;
  unsigned clean = 0;
  for (unsigned g = 1; g <= o.groups; ++g) {
    int fd = open_group(o, m, g, rep);
    if (fd < 0) continue;
    int r = ::ioctl(fd, IOCTL_AWAKE, 0);
    if (r != 0) rep.bad("group {}: AWAKE with no sleeper alive returned {} {}: the daemon kept sleepers of dead or "
                        "interrupted processes", g, r, r < 0 ? err_text() : "");
    else ++clean;
    ::close(fd);
  }
  ::close(m);
  fmt::print("{} {} of {} groups: AWAKE returned 0 with no sleeper alive\n", rep.failed ? "#" : "ok", clean, o.groups);
  return rep.result();
}

int check_groups(const Options& o) {
  Report rep;
  std::mt19937_64 rng(std::random_device{}());
  int m = open_master(o, rep);
  if (m < 0) return 1;
  synchmess_params p{};
  if (::ioctl(m, IOCTL_GET_PARAMS, &p) != 0) rep.bad("GET_PARAMS: {}", err_text());
  else if (p.max_message_size != default_max_message || p.max_storage_size != default_max_storage)
    rep.bad("parameters are {}/{} after the storm, not the defaults {}/{}", p.max_message_size, p.max_storage_size,
            default_max_message, default_max_storage);
  std::vector<unsigned char> buf(65536 + 4096);
  std::uint64_t messages = 0, bytes = 0, merged = 0;
  unsigned usable = 0;
  for (unsigned g = 1; g <= o.groups; ++g) {
    int fd = open_group(o, m, g, rep);
    if (fd < 0) continue;
    unsigned before = rep.failed;
    if (::ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES, 0) != 0) rep.bad("group {}: FLUSH: {}", g, err_text());
    for (unsigned reads = 0;; ++reads) {
      long r = ::read(fd, buf.data(), buf.size());
      if (r == 0) break;
      if (r < 0 || reads > 4'000'000) {
        rep.bad("group {}: draining: read {} {}", g, r, r < 0 ? err_text() : "(never empties)");
        break;
      }
      Validation v = validate(buf.data(), static_cast<std::size_t>(r), true);
      if (!v.ok) rep.bad("group {}: leftover message {} ({} bytes) is not whole: {}", g, reads, r, v.why);
      ++messages;
      bytes += static_cast<std::uint64_t>(r);
      merged += v.records > 1;
    }
    unsigned zero = 0;
    if (::ioctl(fd, IOCTL_SET_SEND_DELAY, &zero) != 0) rep.bad("group {}: SET_SEND_DELAY 0: {}", g, err_text());
    if (round_trip(fd, g, 17 + g, rng, rep)) {
      pollfd pf{fd, POLLIN | POLLOUT, 0};
      int n = ::poll(&pf, 1, 0);
      if (n != 1 || (pf.revents & ~(POLLOUT | POLLWRNORM)))
        rep.bad("group {}: poll of the empty group returned {}, revents {:#x}", g, n, pf.revents);
      long r = ::read(fd, buf.data(), buf.size());
      if (r != 0) rep.bad("group {}: read after the round trip returned {}", g, r);
    }
    if (rep.failed == before) ++usable;
    ::close(fd);
  }
  ::close(m);
  fmt::print("# drained {} leftover messages ({} bytes); {} held more than one record (writev merged)\n", messages,
             bytes, merged);
  fmt::print("{} {} of {} groups usable after the storm\n", rep.failed ? "#" : "ok", usable, o.groups);
  return rep.result();
}

int check_awake(const Options& o) {
  Report rep;
  int m = open_master(o, rep);
  if (m < 0) return 1;
  for (unsigned g : {1u, o.groups}) {
    int fd = open_group(o, m, g, rep);
    if (fd < 0) continue;
    awake_exactly(fd, g, o.sleepers, rep);
    ::close(fd);
  }
  ::close(m);
  return rep.result();
}

}  // namespace fuzz
