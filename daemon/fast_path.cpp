#include "daemon/fast_path.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_seq_packet_socket.hpp>
#include <boost/asio/generic/seq_packet_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "requests/log.h"
#include "synchmess_fast.h"

namespace synchmess {

namespace {

using Proto = boost::asio::generic::seq_packet_protocol;
using Clock = std::chrono::steady_clock;
constexpr auto sweep_every = std::chrono::milliseconds(100);
// The ring's stall bound: a stuck record of a dead process is given up
// after stall_ms of being seen; the first sweep sees it within one period
// and the one that gives it up falls on a period boundary: 100 + 100 =
// 200 ms at worst, well under the 1 s a killed client may hold the others
// up (docs/abi.md "Sweep and repair").  One of a live process waits
// SHM_RING_LIVE_STALLS x stall_ms = 5.2 s (5.3 s at worst): it may only be
// slow, and giving up a record it still copies garbles a message.
constexpr std::uint64_t stall_ms = 65;
// Concurrent hand-out connections of one uid (SO_PEERCRED at accept): one
// user cannot take the global max_connections; over it the newest is closed.
constexpr unsigned per_uid_connections = 4;
constexpr auto idle_limit = std::chrono::seconds(1);
constexpr auto log_every = std::chrono::seconds(10);

int pid_alive(std::uint32_t pid, void*) {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH ? 1 : 0;
}

// Sends the reply, with fd as SCM_RIGHTS when fd >= 0.  Never blocks.
void send_reply(int sock, const synchmess_fast_reply& reply, int fd) {
  iovec iov{const_cast<synchmess_fast_reply*>(&reply), sizeof reply};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  (void)::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

struct FastPath::State : std::enable_shared_from_this<FastPath::State> {
  State(boost::asio::io_context& io_, Registry& registry_, FastTickets& tickets_, std::string path_, unsigned max)
      : io(io_), registry(registry_), tickets(tickets_), path(std::move(path_)), max_connections(max),
        acceptor(io_), timer(io_), logged(registry_.max_groups() + 1) {}

  boost::asio::io_context& io;
  Registry& registry;
  std::function<void(Group&)> repaired_hook;  // FastPath::on_repaired
  FastTickets& tickets;
  const std::string path;
  const unsigned max_connections;
  boost::asio::basic_socket_acceptor<Proto> acceptor;
  boost::asio::steady_timer timer;
  unsigned connections = 0;
  std::unordered_map<std::uint32_t, unsigned> by_uid;  // open connections per uid (no zero entries)
  bool stopped = false;
  bool bound = false;
  const Clock::time_point started = Clock::now();
  struct Logged {
    Clock::time_point at{};
    bool ever = false;
    unsigned suppressed = 0;
  };
  std::vector<Logged> logged;  // by descriptor

  void accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](const boost::system::error_code& ec, Proto::socket sock) {
      if (self->stopped || ec == boost::asio::error::operation_aborted) return;
      if (!ec) self->serve(std::move(sock));
      self->accept();
    });
  }

  void serve(Proto::socket sock) {
    if (connections >= max_connections) return;  // closed: the client uses the device
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
    const std::uint32_t uid = cred.uid;
    if (by_uid[uid] >= per_uid_connections) return;  // closed at once: this uid has enough open
    ++by_uid[uid];
    ++connections;
    auto conn = std::make_shared<Proto::socket>(std::move(sock));
    auto idle = std::make_shared<boost::asio::steady_timer>(io, idle_limit);
    auto self = shared_from_this();
    idle->async_wait([conn](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        conn->close(ignored);  // sent nothing in time
      }
    });
    conn->async_wait(Proto::socket::wait_read, [self, conn, idle, uid](const boost::system::error_code& ec) {
      idle->cancel();
      --self->connections;
      if (auto it = self->by_uid.find(uid); it != self->by_uid.end() && --it->second == 0) self->by_uid.erase(it);
      if (ec || !conn->is_open()) return;
      self->exchange(conn->native_handle());
      boost::system::error_code ignored;
      conn->close(ignored);
    });
  }

  void exchange(int sock) {
    synchmess_fast_request req{};
    ssize_t n = ::recv(sock, &req, sizeof req, MSG_DONTWAIT | MSG_TRUNC);
    synchmess_fast_reply reply{};
    if (n != static_cast<ssize_t>(sizeof req)) {
      if (n <= 0) return;  // closed, or nothing after all
      reply.error = EINVAL;
      return send_reply(sock, reply, -1);
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
    // The pid the sweep will see in the client's records (0: the client is
    // outside this pid namespace): a client that reads another getpid()
    // names nobody instead (synchmess_fast.h).
    reply.pid = cred.pid > 0 ? static_cast<std::uint32_t>(cred.pid) : SYNCHMESS_FAST_PID_UNSEEN;
    auto ok = tickets.redeem(req.token, req.group, cred.uid, FastTickets::Clock::now());
    if (!ok) {
      reply.error = to_errno(ok.error());
      return send_reply(sock, reply, -1);
    }
    Group* g = registry.find(req.group);
    if (g == nullptr) {
      reply.error = ENODEV;
      return send_reply(sock, reply, -1);
    }
    auto seg = g->fast_segment();
    if (!seg) {
      reply.error = to_errno(seg.error());
      return send_reply(sock, reply, -1);
    }
    reply.segment_bytes = seg->bytes;
    reply.generation = seg->generation;
    send_reply(sock, reply, seg->fd);
  }

  // On a fixed schedule (not "a period after the last sweep ended"), so the
  // bound above holds however long a sweep takes; after a long stall it
  // starts over from now instead of catching up in a burst.
  void arm() {
    const auto next = timer.expiry() + sweep_every;
    timer.expires_at(next < Clock::now() ? Clock::now() + sweep_every : next);
    auto self = shared_from_this();
    timer.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->sweep();
      self->arm();
    });
  }

  void sweep() {
    const auto now = Clock::now();
    const auto now_ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count());
    for (Group* g = registry.find_from(1); g != nullptr; g = registry.find_from(g->descriptor() + 1)) {
      if (!g->fast_shared() && !g->needs_repair()) continue;
      SweepReport r = g->sweep(now_ms, stall_ms, pid_alive, nullptr);
      if ((r.repaired > 0 || r.reformatted) && repaired_hook) repaired_hook(*g);
      if (!r.reformatted && !r.abandoned) continue;
      Logged& l = logged[g->descriptor()];
      if (l.ever && now - l.at < log_every) {
        ++l.suppressed;
        continue;
      }
      log::warn("group {}: its shared-memory ring was corrupt (written over by a client); {} "
                   "(its messages are lost, delayed messages kept){}",
                   g->descriptor(), r.reformatted ? "re-formatted" : "gave up a retired segment",
                   l.suppressed ? fmt::format("; {} more times since the last report", l.suppressed) : "");
      l = {now, true, 0};
    }
  }
};

FastPath::FastPath(boost::asio::io_context& io, Registry& registry, FastTickets& tickets, std::string path,
                   unsigned max_connections)
    : state_(std::make_shared<State>(io, registry, tickets, std::move(path), max_connections)) {}

FastPath::~FastPath() { stop(); }

void FastPath::on_repaired(std::function<void(Group&)> fn) { state_->repaired_hook = std::move(fn); }

bool FastPath::start(std::string& error) {
  State& s = *state_;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (s.path.size() >= sizeof addr.sun_path) {
    error = "the socket path is too long";
    return false;
  }
  std::memcpy(addr.sun_path, s.path.c_str(), s.path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = fmt::format("socket: {}", std::strerror(errno));
    return false;
  }
  auto fail_with = [&](std::string what) {
    error = fmt::format("{} {}: {}", what, s.path, std::strerror(errno));
    ::close(fd);
    return false;
  };
  // The parent (RuntimeDirectory= in the unit; made here otherwise).
  if (auto slash = s.path.rfind('/'); slash != 0 && slash != std::string::npos)
    (void)::mkdir(s.path.substr(0, slash).c_str(), 0755);
  struct stat st{};
  if (::lstat(s.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      errno = EEXIST;
      return fail_with("not a socket, not replaced:");
    }
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool served = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (served) {
      errno = EADDRINUSE;
      return fail_with("another process serves");
    }
    ::unlink(s.path.c_str());  // stale: left by a daemon that died
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail_with("bind");
  s.bound = true;
  if (::chmod(s.path.c_str(), 0666) != 0 || ::listen(fd, 64) != 0) return fail_with("listen on");
  boost::system::error_code ec;
  s.acceptor.assign(Proto(AF_UNIX, 0), fd, ec);
  if (ec) {
    error = ec.message();
    ::close(fd);
    return false;
  }
  s.accept();
  s.arm();
  return true;
}

void FastPath::stop() {
  State& s = *state_;
  if (s.stopped) return;
  s.stopped = true;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  s.timer.cancel();
  if (s.bound) ::unlink(s.path.c_str());
}

}  // namespace synchmess
