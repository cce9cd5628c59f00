// cuse_device.h - one character device served through one /dev/cuse open.
//
// Contract: open() opens /dev/cuse, creates the session with
// CUSE_UNRESTRICTED_IOCTL and DEVNAME=devname at (major, minor), and starts
// serving it on the io_context.  The kernel's INIT is answered on a pool
// thread; the device counts as ready only once sysfs shows it at the asked
// major:minor and /dev/<devname> is that char device (a clash makes the
// kernel drop a session it has just accepted).  on_state(true) runs once
// when ready; on_state(false) runs once if it never gets ready or the
// kernel ends the session later.  Request handlers find the device with
// fuse_req_userdata() and its owner with owner().
// Thread safety: open/stop from one thread at a time; callbacks run on pool
// threads.  Destroy it only after stop() and after the io_context stopped;
// destruction removes the device.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "requests/fuse_api.h"  // FUSE_USE_VERSION
#include <fuse3/cuse_lowlevel.h>

#include "core/ioctl_codec.h"
#include "requests/reply.h"
#include "requests/session_pump.h"

namespace synchmess {

struct CuseDeviceOptions {
  std::string devname;  // relative to /dev, e.g. "synch/synchmess1"
  unsigned major = 0;   // 0: dynamic (the kernel picks; minor must be 0)
  unsigned minor = 0;
  const cuse_lowlevel_ops* ops = nullptr;
  void* owner = nullptr;  // what the request handlers serve
  unsigned descriptor = 0;
  std::function<void(bool ready)> on_state;
};

class CuseDevice {
 public:
  CuseDevice(boost::asio::io_context& io, CuseDeviceOptions options);
  ~CuseDevice();
  CuseDevice(const CuseDevice&) = delete;
  CuseDevice& operator=(const CuseDevice&) = delete;

  bool open(std::string& error);
  void stop();

  void* owner() const noexcept { return options_.owner; }
  unsigned descriptor() const noexcept { return options_.descriptor; }
  const std::string& devname() const noexcept { return options_.devname; }
  // The device number the kernel gave (valid once ready).
  dev_t device_number() const noexcept { return dev_.load(); }

  static CuseDevice& of(fuse_req_t req) { return *static_cast<CuseDevice*>(fuse_req_userdata(req)); }
  // Unrestricted ioctl: when the kernel has not sent the argument bytes
  // spec needs yet, asks for exactly those (a retry), answers `reply` and
  // returns true; otherwise leaves `reply` unanswered and returns false.
  static bool fetch_arguments(Reply& reply, const IoctlSpec& spec, void* arg, std::size_t in_size,
                              std::size_t out_size) noexcept;
  // The init and init_done entries of every CUSE ops table: the first sets
  // the session's limits (max_write); the second checks sysfs and the node.
  static void on_init(void* device, fuse_conn_info* conn) noexcept;
  static void on_init_done(void* device);

 private:
  // Each state is reported once: starting -> ready -> ended, or starting -> ended.
  enum class State { starting, ready, ended };

  void initialised();
  void check_created(int attempts_left);
  void report(bool ready);

  boost::asio::io_context& io_;
  CuseDeviceOptions options_;
  fuse_session* session_ = nullptr;
  std::unique_ptr<SessionPump> pump_;
  boost::asio::steady_timer retry_;
  std::atomic<dev_t> dev_{0};
  std::atomic<State> state_{State::starting};
};

// True when the kernel has /dev/cuse (after `modprobe cuse` if needed).
bool cuse_present(std::string& why);

}  // namespace synchmess
