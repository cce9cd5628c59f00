// service.cpp - the devices' errnos (docs/abi.md) turned into sentences.
#include "service.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

namespace synchmess::ctl {
namespace {

using Clock = std::chrono::steady_clock;

std::unexpected<std::string> fail(std::string s) { return std::unexpected(std::move(s)); }

// "synchmessN" with N a descriptor written without leading zeros, else 0.
unsigned group_number(std::string_view name) {
  constexpr std::string_view prefix = "synchmess";
  if (!name.starts_with(prefix)) return 0;
  name.remove_prefix(prefix.size());
  if (name.empty() || name[0] == '0') return 0;
  unsigned n = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
  return ec == std::errc() && end == name.data() + name.size() ? n : 0;
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Service::describe(int err, std::string_view what) const {
  switch (err) {
    case ENOTCONN:
    case ECONNABORTED:
      return fmt::format("{}: the synchmess service at {} is gone (is synchmessd running?)", what, master_);
    case ESHUTDOWN:
      return fmt::format("{}: synchmessd is stopping", what);
    case ENOMEM:
      return fmt::format("{}: synchmessd is out of memory", what);
    default:
      return fmt::format("{}: {}", what, std::strerror(err));
  }
}

Outcome<Service> Service::open(std::string master) {
  int fd = ::open(master.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    // ENOENT: no node (CUSE) or no file in the dev-dir (FUSE); ENOTCONN: the
    // mount of a FUSE daemon that died; ENODEV/ENXIO: a CUSE node left behind.
    if (err == ENOENT || err == ENOTCONN || err == ECONNABORTED || err == ENODEV || err == ENXIO)
      return fail(fmt::format("no synchmess service at {} (is synchmessd running?)", master));
    return fail(fmt::format("cannot open {}: {}", master, std::strerror(err)));
  }
  Service s(Fd(fd), std::move(master));
  synchmess_params p{};
  if (ioctl(fd, IOCTL_GET_PARAMS, &p) != 0) {
    int err = errno;
    if (err == ENOTTY || err == EINVAL || err == EPERM)
      return fail(fmt::format("{} is not a synchmess master device", s.master_));
    return fail(s.describe(err, fmt::format("reading the parameters of {}", s.master_)));
  }
  return s;
}

Outcome<synchmess_params> Service::params() const {
  synchmess_params p{};
  if (ioctl(fd_.get(), IOCTL_GET_PARAMS, &p) != 0)
    return fail(describe(errno, "reading the parameters"));
  return p;
}

Outcome<void> Service::set_params(const synchmess_params& p) const {
  synchmess_params arg = p;
  if (ioctl(fd_.get(), IOCTL_SET_PARAMS, &arg) == 0) return {};
  switch (int err = errno) {
    case EPERM:
      return fail("setting parameters needs root");
    case EINVAL:
      return fail(fmt::format("parameters out of range: max_message_size must be 1..{}, "
                              "max_storage_size 1..1099511627776; nothing changed", kMaxMessage));
    default:
      return fail(describe(err, "setting the parameters"));
  }
}

Outcome<std::string> Service::install(unsigned n) const {
  group_t g{};
  g.descriptor = n;
  if (ioctl(fd_.get(), IOCTL_INSTALL_GROUP, &g) != 0) {
    switch (int err = errno) {
      case EBADF:
        // The range is synchmessd's --max-groups, which the ABI does not expose.
        return fail(fmt::format("group {} does not exist: groups are 1..{} by default "
                                "(synchmessd --max-groups)", n, MAX_NUM_GROUPS));
      case EAGAIN:
        return fail(fmt::format("installing group {}: synchmessd is busy, try again", n));
      default:
        return fail(describe(err, fmt::format("installing group {}", n)));
    }
  }
  const char* end = std::find(g.device_path, g.device_path + sizeof g.device_path, '\0');
  if (end == g.device_path || end == g.device_path + sizeof g.device_path)
    return fail(fmt::format("installing group {}: synchmessd returned no device path", n));
  return std::string(g.device_path, static_cast<std::size_t>(end - g.device_path));
}

Outcome<std::vector<InstalledGroup>> Service::groups() const {
  struct stat m {};
  if (fstat(fd_.get(), &m) != 0) return fail(describe(errno, fmt::format("stat {}", master_)));
  const bool cuse = S_ISCHR(m.st_mode);
  std::filesystem::path dir = std::filesystem::path(master_).parent_path();
  if (dir.empty()) dir = ".";
  std::vector<InstalledGroup> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    unsigned n = group_number(e.path().filename().string());
    struct stat st {};
    if (n == 0 || lstat(e.path().c_str(), &st) != 0) continue;
    bool ours = cuse ? S_ISCHR(st.st_mode) && major(st.st_rdev) == major(m.st_rdev)
                     : S_ISREG(st.st_mode) && st.st_dev == m.st_dev;
    if (ours) out.push_back({n, e.path().string()});
  }
  if (ec) return fail(describe(ec.value(), fmt::format("listing {}", dir.string())));
  std::ranges::sort(out, {}, &InstalledGroup::descriptor);
  return out;
}

Outcome<synchmess_stats> Service::stats() const {
  synchmess_stats st{};
  if (ioctl(fd_.get(), IOCTL_GET_STATS, &st) == 0) return st;
  int err = errno;
  // EPERM is an older synchmessd's answer to a number it does not know.
  if (err == EPERM || err == ENOTTY)
    return fail(fmt::format("the synchmess service at {} does not report statistics (synchmessd too old?)",
                            master_));
  return fail(describe(err, "reading the statistics"));
}

Outcome<synchmess_group_stats> Service::group_stats(unsigned n, unsigned max_groups) const {
  synchmess_group_stats st{};
  st.descriptor = n;
  if (ioctl(fd_.get(), IOCTL_GET_GROUP_STATS, &st) == 0) return st;
  switch (int err = errno) {
    case EBADF:
      return fail(fmt::format("group {} does not exist: groups are 1..{}", n, max_groups));
    case ENODEV:
      return fail(fmt::format("group {} is not installed", n));
    case EPERM:
    case ENOTTY:
      return fail(fmt::format("the synchmess service at {} does not report statistics (synchmessd too old?)",
                              master_));
    default:
      return fail(describe(err, fmt::format("reading the statistics of group {}", n)));
  }
}

Outcome<std::vector<synchmess_group_stats>> Service::all_group_stats() const {
  std::vector<synchmess_group_stats> out;
  for (unsigned from = 1;;) {
    synchmess_group_stats st{};
    st.descriptor = from;
    st.flags = SYNCHMESS_GROUP_STATS_NEXT;
    if (ioctl(fd_.get(), IOCTL_GET_GROUP_STATS, &st) != 0) {
      if (errno == ENODEV) return out;  // no installed group at or above `from`
      return fail(describe(errno, "reading the statistics of the groups"));
    }
    if (st.descriptor < from)  // a daemon that does not keep the contract
      return fail(fmt::format("reading the statistics of the groups: asked for {} and above, got {}", from,
                              st.descriptor));
    out.push_back(st);
    if (st.descriptor == UINT_MAX) return out;
    from = st.descriptor + 1;
  }
}

Outcome<Group> Service::group(unsigned n, int open_flags) const {
  auto path = install(n);
  if (!path) return std::unexpected(path.error());
  // On CUSE the kernel creates the node 0600 and udev applies 0666 shortly
  // afterwards: wait for it as the module's clients do, but not forever.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (access(path->c_str(), R_OK | W_OK) != 0 && errno != ENOENT && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int fd = ::open(path->c_str(), open_flags | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EACCES)
      return fail(fmt::format("cannot open {}: permission denied (is the udev rule 50-synchmess.rules "
                              "installed?)", *path));
    if (err == ENOENT) return fail(fmt::format("group {} was installed but {} does not exist", n, *path));
    return fail(describe(err, fmt::format("opening {}", *path)));
  }
  return Group(*this, n, Fd(fd));
}

Outcome<void> Group::send(std::string_view data) const {
  ssize_t r = write(fd_.get(), data.data(), data.size());
  if (r == static_cast<ssize_t>(data.size())) return {};
  if (r >= 0) return fail(fmt::format("group {}: only {} of {} bytes were sent", n_, r, data.size()));
  int err = errno;
  if (err != EPERM) return fail(service_->describe(err, fmt::format("sending to group {}", n_)));
  // EPERM: too large, or the group's storage would exceed its limit.
  auto p = service_->params();
  if (!p) return fail(fmt::format("group {} refused the message ({})", n_, p.error()));
  if (data.size() > p->max_message_size)
    return fail(fmt::format("message of {} bytes is larger than max_message_size {}", data.size(),
                            p->max_message_size));
  return fail(fmt::format("group {} is full (storage limit {} bytes)", n_, p->max_storage_size));
}

Outcome<std::optional<std::string>> Group::receive(int timeout_ms) const {
  std::string buf(kMaxMessage, '\0');
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (bool poll_error = false;;) {
    ssize_t r = read(fd_.get(), buf.data(), buf.size());
    if (r > 0) return buf.substr(0, static_cast<std::size_t>(r));
    if (r < 0) return fail(service_->describe(errno, fmt::format("reading group {}", n_)));
    if (poll_error)  // and the read did not say why
      return fail(fmt::format("waiting on group {}: poll reported an error on the device", n_));
    // Empty. Wait for POLLIN (another reader may still take the message first).
    int wait = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      wait = static_cast<int>(left);
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = poll(&pfd, 1, wait);
    if (ready < 0 && errno != EINTR)
      return fail(service_->describe(errno, fmt::format("waiting on group {}", n_)));
    // An error (the daemon gone): the next read says which.
    poll_error = ready > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
  }
}

Outcome<void> Group::set_delay(unsigned ms) const {
  // FUSE copies the number's claimed 8 bytes (the first 4 are the delay).
  union {
    unsigned ms;
    unsigned long long claimed;
  } arg{};
  arg.ms = ms;
  if (ioctl(fd_.get(), IOCTL_SET_SEND_DELAY, &arg) == 0) return {};
  int err = errno;
  if (err == EPERM)
    return fail(fmt::format("group {} has delayed messages pending: flush or revoke them first", n_));
  return fail(service_->describe(err, fmt::format("setting the delay of group {}", n_)));
}

Outcome<void> Group::simple_ioctl(unsigned long request, std::string_view what) const {
  if (ioctl(fd_.get(), request) == 0) return {};
  return fail(service_->describe(errno, fmt::format("{} group {}", what, n_)));
}

Outcome<void> Group::revoke() const { return simple_ioctl(IOCTL_REVOKE_DELAYED_MESSAGES, "revoking"); }

Outcome<void> Group::flush() const { return simple_ioctl(IOCTL_FLUSH_DELAYED_MESSAGES, "flushing"); }

Outcome<void> Group::sleep() const {
  if (ioctl(fd_.get(), IOCTL_SLEEP) == 0) return {};
  int err = errno;
  if (err == EINTR)
    return fail(fmt::format("sleep on group {} interrupted (a signal, or synchmessd stopped)", n_));
  return fail(service_->describe(err, fmt::format("sleeping on group {}", n_)));
}

Outcome<int> Group::awake() const {
  int r = ioctl(fd_.get(), IOCTL_AWAKE);
  if (r >= 0) return r;
  return fail(service_->describe(errno, fmt::format("waking group {}", n_)));
}

}  // namespace synchmess::ctl
