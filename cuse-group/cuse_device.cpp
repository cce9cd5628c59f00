#include "cuse-group/cuse_device.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <fstream>

#include "requests/log.h"

extern char** environ;

namespace synchmess {
namespace {
// How long init_done waits for the kernel to show the device: attempts x interval.
constexpr int creation_checks = 50;
constexpr std::chrono::milliseconds creation_check_interval{20};
// How long cuse_present() waits for /dev/cuse after `modprobe cuse`: checks x interval.
constexpr int cuse_node_checks = 20;
constexpr useconds_t cuse_node_check_interval_us = 50000;
}  // namespace

CuseDevice::CuseDevice(boost::asio::io_context& io, CuseDeviceOptions options)
    : io_(io), options_(std::move(options)), retry_(io) {}

CuseDevice::~CuseDevice() {
  stop();
  pump_.reset();
  if (session_ != nullptr) fuse_session_destroy(session_);  // closes the fd: the device goes
}

bool CuseDevice::open(std::string& error) {
  std::string info = "DEVNAME=" + options_.devname;
  const char* info_argv[] = {info.c_str()};
  cuse_info ci{};
  ci.dev_major = options_.major;
  ci.dev_minor = options_.minor;
  ci.dev_info_argc = 1;
  ci.dev_info_argv = info_argv;
  ci.flags = CUSE_UNRESTRICTED_IOCTL;
  const char* argv[] = {"synchmessd"};
  fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
  session_ = cuse_lowlevel_new(&args, &ci, options_.ops, this);
  fuse_opt_free_args(&args);
  if (session_ == nullptr) {
    error = "cuse_lowlevel_new failed";
    return false;
  }
  int fd = ::open("/dev/cuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    error = std::string("cannot open /dev/cuse: ") + std::strerror(errno);
    return false;
  }
  std::string fd_path = "/dev/fd/" + std::to_string(fd);
  if (fuse_session_mount(session_, fd_path.c_str()) != 0) {
    ::close(fd);
    error = "cannot attach /dev/cuse to the session";
    return false;
  }
  pump_ = std::make_unique<SessionPump>(io_, session_, options_.devname, [this] {
    if (state_.load() == State::ready) log::warn("{}: the kernel ended the device's session", options_.devname);
    report(false);
  });
  if (!pump_->start()) {
    error = "cannot serve the CUSE session";
    return false;
  }
  return true;
}

void CuseDevice::stop() {
  if (pump_) pump_->stop();
  boost::system::error_code ec;
  retry_.cancel();
}

void CuseDevice::initialised() { check_created(creation_checks); }

bool CuseDevice::fetch_arguments(Reply& reply, const IoctlSpec& spec, void* arg, std::size_t in_size,
                                 std::size_t out_size) noexcept {
  if (in_size >= spec.in_size && out_size >= spec.out_size) return false;
  iovec in_iov{arg, spec.in_size};
  iovec out_iov{arg, spec.out_size};
  reply.ioctl_retry(std::span(&in_iov, spec.in_size ? 1 : 0), std::span(&out_iov, spec.out_size ? 1 : 0));
  return true;
}

void CuseDevice::on_init_done(void* device) { static_cast<CuseDevice*>(device)->initialised(); }

void CuseDevice::on_init(void*, fuse_conn_info* conn) noexcept {
  conn->max_write = std::min(conn->max_write, session_max_write);
}

// The kernel creates the device while it handles our INIT reply; on a
// major:minor clash it drops the session instead.  Trust sysfs, not the reply.
void CuseDevice::check_created(int attempts_left) {
  std::string sysname = options_.devname;
  for (char& c : sysname)
    if (c == '/') c = '!';
  std::ifstream in("/sys/class/cuse/" + sysname + "/dev");
  unsigned maj = 0, min = 0;
  char colon = 0;
  struct stat st{};
  bool ok = static_cast<bool>(in >> maj >> colon >> min) && colon == ':' &&
            (options_.major == 0 || maj == options_.major) && min == options_.minor &&
            ::stat(("/dev/" + options_.devname).c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
            st.st_rdev == makedev(maj, min);
  if (ok) {
    dev_ = makedev(maj, min);
    report(true);
    return;
  }
  if (attempts_left <= 0) {
    log::error("{}: the kernel did not create the device at {}:{}", options_.devname,
               options_.major, options_.minor);
    report(false);
    return;
  }
  retry_.expires_after(creation_check_interval);
  retry_.async_wait([this, attempts_left](const boost::system::error_code& ec) {
    if (!ec) check_created(attempts_left - 1);
  });
}

void CuseDevice::report(bool ready) {
  if (ready) {
    State expected = State::starting;
    if (state_.compare_exchange_strong(expected, State::ready) && options_.on_state) options_.on_state(true);
    return;
  }
  if (state_.exchange(State::ended) != State::ended && options_.on_state) options_.on_state(false);
}

bool cuse_present(std::string& why) {
  if (::access("/dev/cuse", F_OK) == 0) {
    why = "/dev/cuse exists";
    return true;
  }
  pid_t pid = 0;
  const char* argv[] = {"modprobe", "-q", "cuse", nullptr};
  if (::posix_spawnp(&pid, "modprobe", nullptr, nullptr, const_cast<char**>(argv), environ) == 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  for (int i = 0; i < cuse_node_checks && ::access("/dev/cuse", F_OK) != 0; ++i)
    ::usleep(cuse_node_check_interval_us);
  if (::access("/dev/cuse", F_OK) == 0) {
    why = "/dev/cuse appeared after modprobe cuse";
    return true;
  }
  why = "no /dev/cuse, and `modprobe cuse` did not create it";
  return false;
}

}  // namespace synchmess
