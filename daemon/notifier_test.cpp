// Notifier against a datagram socket the test binds as $NOTIFY_SOCKET, the
// way systemd receives sd_notify messages.
#include "daemon/notifier.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

namespace synchmess {
namespace {

// A bound AF_UNIX datagram socket at a fresh path, exported as NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() {
    char dir[] = "/tmp/synchmess-notify-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return;
    dir_ = dir;
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  bool ok() const { return fd_ >= 0; }

  // The next message, or "" if none arrives within 10 s.
  std::string receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
  // Whether a message is waiting right now.
  bool pending() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

struct Watchdog {  // $WATCHDOG_USEC (and our pid) for the test's duration
  explicit Watchdog(const char* usec) {
    ::setenv("WATCHDOG_USEC", usec, 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  }
  ~Watchdog() {
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
};

TEST(Notifier, ReadyAndStatusReachTheSocket) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  boost::asio::io_context io;
  Notifier n(io);
  n.ready("serving /dev/synch over cuse, 0 groups");
  EXPECT_EQ(sock.receive(), "READY=1\nSTATUS=serving /dev/synch over cuse, 0 groups");
  n.status("serving /dev/synch over cuse, 3 groups");
  EXPECT_EQ(sock.receive(), "STATUS=serving /dev/synch over cuse, 3 groups");
  n.stop();
  EXPECT_EQ(sock.receive(), "STOPPING=1");
}

TEST(Notifier, NoWatchdogUnlessTheUnitAsks) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  boost::asio::io_context io;
  Notifier n(io);
  EXPECT_EQ(Notifier::watchdog_period().count(), 0);
  EXPECT_FALSE(n.start_watchdog());
  {
    Watchdog w("30000000");
    ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);  // meant for another process
    EXPECT_EQ(Notifier::watchdog_period().count(), 0);
    EXPECT_FALSE(n.start_watchdog());
  }
  EXPECT_FALSE(sock.pending());
}

TEST(Notifier, WatchdogPeriodIsHalfTheInterval) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  Watchdog w("30000000");
  EXPECT_EQ(Notifier::watchdog_period(), std::chrono::seconds(15));
}

TEST(Notifier, WatchdogPingsFromTheIoContextWithFreshStatus) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  Watchdog w("20000");  // pings every 10 ms
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  {
    Notifier n(io);
    int calls = 0;  // refresh runs on the io_context thread only
    ASSERT_TRUE(n.start_watchdog([&] { return "ping " + std::to_string(++calls); }));
    EXPECT_EQ(sock.receive(), "WATCHDOG=1");
    EXPECT_EQ(sock.receive(), "WATCHDOG=1\nSTATUS=ping 1");
    EXPECT_EQ(sock.receive(), "WATCHDOG=1\nSTATUS=ping 2");
    EXPECT_EQ(sock.receive(), "WATCHDOG=1\nSTATUS=ping 3");
    n.stop();
    // STOPPING=1 is the last message: pings already queued come before it.
    std::string m;
    while ((m = sock.receive()).starts_with("WATCHDOG=1")) {}
    EXPECT_EQ(m, "STOPPING=1");
  }
  guard.reset();
  runner.join();
}

TEST(Notifier, WithoutNotifySocketNothingHappens) {
  ::unsetenv("NOTIFY_SOCKET");
  Watchdog w("20000");
  boost::asio::io_context io;
  Notifier n(io);
  n.ready("x");
  n.status("y");
  EXPECT_EQ(Notifier::watchdog_period().count(), 10000);
  n.stop();
}

}  // namespace
}  // namespace synchmess
