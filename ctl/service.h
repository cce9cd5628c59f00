// service.h - synchmessctl's client of a running synchmess service: the
// master device (install, parameters, the installed groups, statistics)
// and the group devices (send, receive, delay, revoke, flush, sleep, awake).
//
// Contract: it talks to the devices only through the ABI of docs/abi.md,
// like any client. Every operation returns Outcome<T>: the value, or one
// sentence for the user that says what went wrong (the errno turned into
// words: "group 7 is full (storage limit 1048576 bytes)"); nothing throws
// for a failed operation. Group device paths come from IOCTL_INSTALL_GROUP's
// device_path, so the tool works for any --dev-dir (CUSE or FUSE); opening a
// group therefore installs it first (the install is idempotent), as the
// module's clients do.
//
// Thread safety: none; one thread uses a Service and its Groups. A Group
// refers to its Service, which must outlive it and stay where it is.
#pragma once

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "synchmess_interface.h"
#include "synchmess_stats.h"

namespace synchmess::ctl {

template <class T>
using Outcome = std::expected<T, std::string>;

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct InstalledGroup {
  unsigned descriptor;
  std::string path;
};

class Group;

class Service {
 public:
  // Opens the master device read-only and checks that it answers
  // IOCTL_GET_PARAMS (so a path that is no synchmess master is refused).
  static Outcome<Service> open(std::string master);

  Outcome<synchmess_params> params() const;
  // Root only; zero fields are kept.
  Outcome<void> set_params(const synchmess_params& p) const;
  // IOCTL_INSTALL_GROUP: the device path of group n.
  Outcome<std::string> install(unsigned n) const;
  // The groups whose devices exist beside the master, by descriptor:
  // on CUSE character devices with the master's major, on FUSE the files.
  Outcome<std::vector<InstalledGroup>> groups() const;
  // IOCTL_GET_STATS.
  Outcome<synchmess_stats> stats() const;
  // IOCTL_GET_GROUP_STATS of group n; does not install it ("group n is not
  // installed"). max_groups is only for the words of an out-of-range n.
  Outcome<synchmess_group_stats> group_stats(unsigned n, unsigned max_groups) const;
  // Every installed group's statistics, by descriptor (the NEXT walk).
  Outcome<std::vector<synchmess_group_stats>> all_group_stats() const;
  // Installs group n, waits (up to 5 s) until its device is accessible
  // (on CUSE udev sets the mode shortly after the install) and opens it.
  Outcome<Group> group(unsigned n, int open_flags) const;

  const std::string& master() const { return master_; }
  // The words for an errno that any device can give (daemon gone, stopping),
  // or a generic "WHAT: strerror" otherwise.
  std::string describe(int err, std::string_view what) const;

 private:
  Service(Fd fd, std::string master) : fd_(std::move(fd)), master_(std::move(master)) {}
  Fd fd_;
  std::string master_;
};

class Group {
 public:
  // One message of data.size() bytes (> 0).
  Outcome<void> send(std::string_view data) const;
  // The oldest readable message, or nullopt when the group stays empty:
  // timeout_ms 0 does not wait, < 0 waits forever (poll() on the device).
  Outcome<std::optional<std::string>> receive(int timeout_ms) const;
  Outcome<void> set_delay(unsigned ms) const;
  Outcome<void> revoke() const;
  Outcome<void> flush() const;
  // Blocks until an AWAKE on the group.
  Outcome<void> sleep() const;
  // How many sleepers it woke.
  Outcome<int> awake() const;

 private:
  friend class Service;
  Group(const Service& s, unsigned n, Fd fd) : service_(&s), n_(n), fd_(std::move(fd)) {}
  Outcome<void> simple_ioctl(unsigned long request, std::string_view what) const;
  const Service* service_;
  unsigned n_;
  Fd fd_;
};

// The largest message a read can return: the ABI's cap on max_message_size.
inline constexpr std::size_t kMaxMessage = 65536;

}  // namespace synchmess::ctl
