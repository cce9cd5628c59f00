#include "tests/fuzz/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "synchmess_interface.h"
#include "tests/fuzz/record.h"
#include "tests/fuzz/worker_impl.h"

namespace fuzz {
namespace {

const char* action_name(int a) {
  static constexpr const char* n[] = {"SIGKILL", "SIGINT", "SIGUSR1", "AWAKE", "others' AWAKE"};
  return n[a];
}
void on_signal(int) {}

}  // namespace

void Worker::run() {
  fds_.reserve(max_fds + 2);
  sleepers_.reserve(max_sleepers + 1);
  do_open(true);
  do_open(false);
  do_open(false);
  Heartbeat& hb = s_.hb[slot_];
  while (!s_.stop.load() && now_ms() < deadline_ && s_.total_ops.fetch_add(1) < o_.max_ops) {
    ++n_;
    if (n_ % 1024 == 0 && !arena_.holes_intact()) {
      fail(s_, who(), "fuzzer bug: something was mapped into the arena's holes");
      ::_exit(3);
    }
    tend_sleepers(false);
    hb.since_ms.store(now_ms());
    if (pick(2500) == 0) {  // a hoard now and then (worker_io.cpp)
      hb.op.store(op_write);
      do_hoard();
    } else {
      step();
    }
    hb.since_ms.store(0);
  }
  hb.op.store(-1);
  hb.since_ms.store(now_ms());
  tend_sleepers(true);
  ::_exit(0);
}

void Worker::step() {
  // Weights: plenty of reads and writes, enough of everything else.
  static constexpr int weights[op_count] = {
      /*open_master*/ 2, /*open_group*/ 6, /*close*/ 5, /*dup*/ 2, /*install*/ 6, /*write*/ 16,
      /*read*/ 16, /*writev*/ 4, /*readv*/ 4, /*set_delay*/ 4, /*revoke*/ 3, /*flush_ioctl*/ 3,
      /*fsync*/ 2, /*sleep*/ 3, /*awake*/ 4, /*poll*/ 4, /*epoll_ctl*/ 2, /*epoll_wait*/ 2,
      /*unknown_ioctl*/ 4, /*get_params*/ 1, /*set_params*/ 1};
  static const int total = [] { int t = 0; for (int w : weights) t += w; return t; }();
  int r = static_cast<int>(pick(static_cast<std::uint64_t>(total)));
  int op = 0;
  while (r >= weights[op]) r -= weights[op++];
  s_.hb[slot_].op.store(op);
  switch (op) {
    case op_open_master: do_open(true); break;
    case op_open_group: do_open(false); break;
    case op_close: do_close(); break;
    case op_dup: do_dup(); break;
    case op_install: do_install(); break;
    case op_write: do_write(); break;
    case op_read: do_read(); break;
    case op_writev: do_writev(); break;
    case op_readv: do_readv(); break;
    case op_set_delay: do_set_delay(); break;
    case op_revoke: do_simple_ioctl(op_revoke, IOCTL_REVOKE_DELAYED_MESSAGES); break;
    case op_flush_ioctl: do_simple_ioctl(op_flush_ioctl, IOCTL_FLUSH_DELAYED_MESSAGES); break;
    case op_fsync: do_fsync(); break;
    case op_sleep: do_sleep(); break;
    case op_awake: do_awake(); break;
    case op_poll: do_poll(); break;
    case op_epoll_ctl:
    case op_epoll_wait: do_epoll(); break;
    case op_unknown_ioctl: do_unknown_ioctl(); break;
    case op_get_params: do_params(false); break;
    case op_set_params: do_params(true); break;
  }
}

// --- open, close, dup -------------------------------------------------------

void Worker::do_open(bool master) {
  if (fds_.size() >= max_fds) do_close();
  std::string name;
  int exists = 1;  // 0 no, 1 yes, 2 maybe (not installed as far as we know)
  unsigned g = 0;
  if (master) {
    name = "synchmess";
  } else {
    switch (pick(14)) {
      case 0: name = "synchmess0"; exists = 0; break;
      case 1: name = fmt::format("synchmess{}", o_.groups + 1); exists = 0; break;
      case 2: name = "synchmess01"; exists = 0; break;
      case 3: name = "synchmess99999999999999"; exists = 0; break;
      case 4: name = "synchmess-1"; exists = 0; break;
      case 5: name = "nonexistent"; exists = 0; break;
      default:
        g = hot_group();
        name = fmt::format("synchmess{}", g);
        exists = known_[g] ? 1 : 2;
    }
  }
  int acc = master ? (chance(4) ? (chance(2) ? O_WRONLY : O_RDWR) : O_RDONLY)
                   : (chance(5) ? O_RDONLY : chance(4) ? O_WRONLY : O_RDWR);
  int flags = acc;
  if (chance(4)) flags |= O_NONBLOCK;
  if (chance(8)) flags |= O_APPEND;
  if (chance(4)) flags |= O_CLOEXEC;
  if (chance(10)) flags |= O_SYNC;
  if (chance(12)) flags |= O_TRUNC;
  if (chance(12)) flags |= O_NOATIME;
  if (chance(25)) flags |= O_DIRECTORY;
  if (chance(12)) flags |= chance(2) ? O_CREAT : O_CREAT | O_EXCL;
  if (chance(15)) flags |= O_PATH;
  if (chance(12)) flags |= O_DIRECT;
  if (chance(10)) flags |= O_NOFOLLOW;

  // What the VFS, FUSE's default_permissions and the daemon allow.
  Expect e;
  bool path = flags & O_PATH;
  int f = path ? flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : flags;
  if ((f & O_CREAT) && (f & O_DIRECTORY)) {
    e.err(EINVAL);
  } else {
    if (exists != 1) {  // the name may not exist
      if (f & O_CREAT) e.err(root_ ? EPERM : EACCES);
      else e.err(ENOENT);
    }
    if (exists != 0) {  // the name may exist
      Expect y;
      if ((f & O_CREAT) && (f & O_EXCL)) y.err(EEXIST);
      if (f & O_DIRECTORY) y.err(ENOTDIR);
      if (!path && master) {
        if (acc != O_RDONLY) y.err(root_ ? EPERM : EACCES);
        if ((f & O_TRUNC) && !root_) y.err(EACCES);
      }
      if (!path && (f & O_NOATIME) && !root_) y.err(EPERM);
      // O_TRUNC reaches the daemon's open (libfuse asks for atomic_o_trunc),
      // which ignores it; O_DIRECT is fine on FUSE.
      if (y.errnos == 0) e.ok(0);
      e.errnos |= y.errnos;
    }
  }
  std::string p = path_of(name);
  int fd = ::open(p.c_str(), flags);
  int err = errno;
  check(master ? op_open_master : op_open_group, fd, err, e,
        [&] { return fmt::format("open({}, {:#o})", p, flags); });
  if (fd < 0) return;
  if (fds_.size() >= max_fds + 1 || !e.success) {
    ::close(fd);
    return;
  }
  Kind k = path ? Kind::path : master ? Kind::master : Kind::group;
  fds_.push_back(Fd{fd, k, g, acc});
  if (g) known_[g] = true;
}

void Worker::do_close() {
  if (fds_.empty()) return;
  std::size_t i = pick(fds_.size());
  Fd f = fds_[i];
  fds_.erase(fds_.begin() + static_cast<long>(i));
  int r = ::close(f.fd);
  check(op_close, r, errno, Expect().ok(0, 0), [&] { return fmt::format("close({})", fd_text(f)); });
}

void Worker::do_dup() {
  Fd* a = any_fd();
  if (!a || fds_.size() >= max_fds) return;
  Fd f = *a;
  if (chance(3) && fds_.size() > 1) {  // dup2 over another descriptor of ours
    std::size_t j = pick(fds_.size());
    int target = fds_[j].fd;
    int r = ::dup2(f.fd, target);
    if (check(op_dup, r, errno, Expect().ok(target, target),
              [&] { return fmt::format("dup2({}, {})", fd_text(f), target); }))
      fds_[j] = Fd{target, f.kind, f.group, f.acc};
    return;
  }
  int r = chance(2) ? ::dup(f.fd) : ::fcntl(f.fd, F_DUPFD_CLOEXEC, 0);
  if (check(op_dup, r, errno, Expect().ok(0), [&] { return fmt::format("dup({})", fd_text(f)); }))
    fds_.push_back(Fd{r, f.kind, f.group, f.acc});
}

// --- master ioctls ----------------------------------------------------------

void Worker::do_install() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  if (f.kind == Kind::group && chance(2)) {  // mostly where it belongs
    auto m = std::find_if(fds_.begin(), fds_.end(), [](const Fd& x) { return x.kind == Kind::master; });
    if (m != fds_.end()) f = *m;
  }
  unsigned d;
  switch (pick(10)) {
    case 0: d = 0; break;
    case 1: d = o_.groups + 1; break;
    case 2: d = static_cast<unsigned>(pick(4) == 0 ? 0xFFFFFFFFu : pick(3) == 0 ? 0x80000000u : rng_()); break;
    default: d = hot_group();
  }
  bool valid = d >= 1 && d <= o_.groups;
  std::string what;
  unsigned char* p = chance(2) ? arena_.big() + pick(4096) : arena_.pointer(rng_, sizeof(group_t) + 8, what);
  if (what.empty()) what = "valid";
  if (arena_.readable(p, 4)) arena_.poke(p, &d, 4);
  std::string expected = group_path(d);
  std::size_t path_bytes = expected.size() + 1;
  Expect e;
  if (!refuse_path(f, e)) {
    if (!arena_.readable(p, 8)) e.err(EFAULT);  // the kernel copies the number's 8 bytes in
    else if (f.kind == Kind::group) e.err(EPERM);
    else if (!valid) e.err(EBADF);
    else if (!arena_.writable(p + 4, path_bytes)) e.err(EFAULT);  // the daemon writes the path
    else if (!arena_.writable(p, 8)) e.err(EFAULT);               // the kernel copies 8 bytes out
    else e.ok(0, 0);
  }
  // A sentinel where the path would go: a failed install must not write it.
  constexpr unsigned char sentinel = 0x77;
  for (std::size_t i = 4; i < 4 + path_bytes; ++i)
    if (arena_.writable(p + i, 1)) p[i] = sentinel;
  int r = ::ioctl(f.fd, IOCTL_INSTALL_GROUP, p);
  int err = errno;
  auto text = [&] { return fmt::format("INSTALL_GROUP({}, descriptor {}, {} {})", fd_text(f), d, what, static_cast<void*>(p)); };
  bool as_expected = check(op_install, r, err, e, text);
  if (r < 0) {
    std::size_t written = 0;
    for (std::size_t i = 4; i < 4 + path_bytes; ++i)
      if (arena_.writable(p + i, 1) && p[i] != sentinel) ++written;
    if (written)
      fail(s_, who(), fmt::format("{} failed with {} but wrote {} bytes of the path into the caller", text(),
                                  errno_name(err), written));
  }
  if (as_expected && r == 0) {
    known_[d] = true;
    if (std::memcmp(p + 4, expected.c_str(), path_bytes) != 0)
      fail(s_, who(), fmt::format("{}: path written back is \"{:.{}}\", expected \"{}\"", text(),
                                   reinterpret_cast<const char*>(p + 4), 255, expected));
  }
}

void Worker::do_params(bool set) {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  std::string what;
  unsigned char* p = chance(2) ? arena_.big() + pick(4096) : arena_.pointer(rng_, 24, what);
  if (what.empty()) what = "valid";
  synchmess_params v{0, 0};
  if (set && root_) {  // never change what the other workers count on
    switch (pick(3)) {
      case 0: v = {0, 0}; break;
      case 1: v = {65537, 0}; break;
      default: v = {0, 1ull << 41}; break;
    }
  } else if (set) {
    v = {rng_() % 4096, rng_()};
  }
  if (arena_.readable(p, sizeof v)) arena_.poke(p, &v, sizeof v);
  Expect e;
  if (!refuse_path(f, e)) {
    if (set && !arena_.readable(p, sizeof v)) e.err(EFAULT);
    else if (f.kind == Kind::group) e.err(EPERM);
    else if (set && !root_) e.err(EPERM);
    else if (set) (v.max_message_size == 0 && v.max_storage_size == 0) ? void(e.ok(0, 0)) : void(e.err(EINVAL));
    else if (!arena_.writable(p, sizeof v)) e.err(EFAULT);
    else e.ok(0, 0);
  }
  int r = ::ioctl(f.fd, set ? IOCTL_SET_PARAMS : IOCTL_GET_PARAMS, p);
  auto text = [&] {
    return fmt::format("{}({}, {} {}, {{{}, {}}})", set ? "SET_PARAMS" : "GET_PARAMS", fd_text(f), what,
                       static_cast<void*>(p), v.max_message_size, v.max_storage_size);
  };
  if (check(set ? op_set_params : op_get_params, r, errno, e, text) && r == 0 && !set) {
    synchmess_params got;
    std::memcpy(&got, p, sizeof got);
    if (got.max_message_size != o_.max_message || got.max_storage_size != o_.max_storage)
      fail(s_, who(), fmt::format("{}: parameters changed to {}/{}", text(), got.max_message_size, got.max_storage_size));
  }
}

void Worker::do_unknown_ioctl() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  // Types the VFS answers itself for every file ('T' FIONREAD/FIOCLEX...,
  // 'X' and 'f' filesystem ioctls, 0x94 clone/dedupe, 0x15 fsuuid, 0 FIBMAP)
  // never reach the daemon: leave them out.
  static constexpr unsigned foreign[] = {0x01, 0x12, 0x41, 0x42, 0x53, 0x56, 0x80, 0xAE, 0xB7, 0xD2, 0xD4, 0xFF};
  unsigned type = chance(2) ? 0xD3 : foreign[pick(std::size(foreign))];
  unsigned dir = static_cast<unsigned>(pick(4));
  unsigned nr = static_cast<unsigned>(type == 0xD3 && chance(2) ? pick(12) : pick(256));
  static constexpr unsigned sizes[] = {0, 4, 8, 16, 260, 16383};
  unsigned size = static_cast<unsigned>(chance(3) ? pick(600) : sizes[pick(std::size(sizes))]);
  unsigned cmd = _IOC(dir, type, nr, size);
  static constexpr unsigned known[] = {IOCTL_INSTALL_GROUP, IOCTL_SLEEP, IOCTL_AWAKE,
                                       IOCTL_SET_SEND_DELAY, IOCTL_REVOKE_DELAYED_MESSAGES,
                                       IOCTL_FLUSH_DELAYED_MESSAGES, IOCTL_GET_PARAMS, IOCTL_SET_PARAMS};
  if (std::find(std::begin(known), std::end(known), cmd) != std::end(known)) cmd ^= 0x80;  // nr ^ 0x80
  nr = _IOC_NR(cmd);
  std::string what;
  unsigned char* p = arena_.pointer(rng_, size + 8, what);
  Expect e;
  if (!refuse_path(f, e)) {
    if ((dir & _IOC_WRITE) && size > 0 && !arena_.readable(p, size)) e.err(EFAULT);
    else e.err(EPERM);
  }
  int r = ::ioctl(f.fd, cmd, p);
  check(op_unknown_ioctl, r, errno, e, [&] {
    return fmt::format("ioctl({}, {:#x} (dir {} type {:#x} nr {} size {}), {} {})", fd_text(f), cmd, dir, type,
                       nr, size, what, static_cast<void*>(p));
  });
}

// --- group ioctls -----------------------------------------------------------

void Worker::do_set_delay() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  unsigned ms;
  switch (pick(10)) {
    case 0: ms = 0xFFFFFFFFu; break;
    case 1: ms = static_cast<unsigned>(rng_()); break;
    case 2: ms = 1000; break;
    case 3: case 4: ms = 1 + static_cast<unsigned>(pick(50)); break;
    default: ms = 0;
  }
  std::string what;
  unsigned char* p = chance(3) ? arena_.pointer(rng_, 12, what) : arena_.big() + pick(4096);
  if (what.empty()) what = "valid";
  if (arena_.readable(p, 4)) arena_.poke(p, &ms, 4);
  Expect e;
  if (!refuse_path(f, e)) {
    if (!arena_.readable(p, 8)) e.err(EFAULT);  // the number's size field says 8
    else if (f.kind == Kind::master) e.err(EPERM);
    else e.ok(0, 0).err(EPERM);  // EPERM: delayed messages pending
  }
  int r = ::ioctl(f.fd, IOCTL_SET_SEND_DELAY, p);
  check(op_set_delay, r, errno, e, [&] {
    return fmt::format("SET_SEND_DELAY({}, {} ms, {} {})", fd_text(f), ms, what, static_cast<void*>(p));
  });
}

void Worker::do_simple_ioctl(Op op, unsigned long cmd) {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  Expect e;
  if (!refuse_path(f, e)) f.kind == Kind::master ? void(e.err(EPERM)) : void(e.ok(0, 0));
  unsigned long junk = rng_();
  int r = ::ioctl(f.fd, cmd, junk);
  check(op, r, errno, e, [&] { return fmt::format("ioctl({}, {:#x}, {:#x})", fd_text(f), cmd, junk); });
}

void Worker::do_fsync() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  Expect e;
  if (!refuse_path(f, e)) f.kind == Kind::master ? void(e.err(EPERM)) : void(e.ok(0, 0));
  bool data = chance(2);
  int r = data ? ::fdatasync(f.fd) : ::fsync(f.fd);
  check(op_fsync, r, errno, e, [&] { return fmt::format("{}({})", data ? "fdatasync" : "fsync", fd_text(f)); });
}

void Worker::do_awake() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  Expect e;
  if (!refuse_path(f, e)) f.kind == Kind::master ? void(e.err(EPERM)) : void(e.ok(0));
  int r = ::ioctl(f.fd, IOCTL_AWAKE, 0);
  check(op_awake, r, errno, e, [&] { return fmt::format("AWAKE({})", fd_text(f)); });
}

// --- SLEEP in child processes ---------------------------------------------

void Worker::do_sleep() {
  Fd* a = any_fd();
  // Draw everything first: how many sleepers are still around depends on
  // timing, and the sequence of draws must not (replays).
  int act = static_cast<int>(pick(5));
  std::int64_t wait = static_cast<std::int64_t>(act == act_others ? 500 + pick(1000) : pick(300));
  if (!a || sleepers_.size() >= max_sleepers) return;
  Fd f = *a;
  pid_t parent = ::getpid();
  sigset_t block, old;  // no SIGINT/SIGUSR1 until the child's handler is in
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  pid_t pid = ::fork();
  if (pid != 0) ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    fail(s_, who(), fmt::format("fork: {}", std::strerror(errno)));
    return;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    struct sigaction sa{};
    sa.sa_handler = on_signal;  // no SA_RESTART: the SLEEP must come back EINTR
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    int r = ::ioctl(f.fd, IOCTL_SLEEP, 0);
    ::_exit(r == 0 ? 0 : std::clamp(errno, 1, 199));
  }
  sleepers_.push_back(Sleeper{pid, f.kind, f.group, act, now_ms() + wait});
}

void Worker::awake_group(unsigned g) {
  auto it = std::find_if(fds_.begin(), fds_.end(), [g](const Fd& x) { return x.kind == Kind::group && x.group == g; });
  int fd = it != fds_.end() ? it->fd : ::open(group_path(g).c_str(), O_RDWR);
  if (fd < 0) return;
  int r = ::ioctl(fd, IOCTL_AWAKE, 0);
  check(op_awake, r, errno, Expect().ok(0), [&] { return fmt::format("AWAKE(group {} fd {})", g, fd); });
  if (it == fds_.end()) ::close(fd);
}

void Worker::sleeper_done(const Sleeper& sl, int status) {
  auto text = [&] {
    return fmt::format("SLEEP in child {} on {} {} ({}{})", sl.pid,
                       sl.kind == Kind::group ? "group" : sl.kind == Kind::master ? "master" : "O_PATH fd",
                       sl.group, action_name(sl.action), sl.escalated ? ", then SIGKILL" : "");
  };
  if (WIFSIGNALED(status)) {
    if (WTERMSIG(status) == SIGKILL && (sl.action == act_kill || sl.action == act_others || sl.escalated)) {
      s_.tally[op_sleep][sleeper_killed].fetch_add(1);
      return;
    }
    fail(s_, who(), fmt::format("{}: child died of signal {}", text(), WTERMSIG(status)));
    return;
  }
  int code = WEXITSTATUS(status);
  Expect e;
  if (sl.kind == Kind::path) e.err(EBADF);
  else if (sl.kind == Kind::master) e.err(EPERM);
  else {
    e.ok(0, 0);
    if (sl.action == act_sigint || sl.action == act_sigusr1 || sl.escalated) e.err(EINTR);
  }
  check(op_sleep, code == 0 ? 0 : -1, code, e, text);
}

// Acts on due sleepers, reaps finished ones, and fails (then SIGKILLs) one
// that its action does not release within 5 s.
void Worker::tend_sleepers(bool winding_down) {
  std::int64_t give_up = now_ms() + 12000;
  do {
    std::int64_t now = now_ms();
    for (std::size_t i = 0; i < sleepers_.size();) {
      Sleeper& sl = sleepers_[i];
      int status = 0;
      pid_t w = ::waitpid(sl.pid, &status, WNOHANG);
      if (w == sl.pid) {
        sleeper_done(sl, status);
        sleepers_.erase(sleepers_.begin() + static_cast<long>(i));
        continue;
      }
      if (winding_down && sl.acting == 0) sl.due = std::min(sl.due, now);
      if (now >= sl.due) {
        if (sl.acting == 0) sl.acting = now;
        if (now - sl.last >= 100 && !sl.escalated) {
          sl.last = now;
          switch (sl.action) {
            case act_sigint: ::kill(sl.pid, SIGINT); break;
            case act_sigusr1: ::kill(sl.pid, SIGUSR1); break;
            case act_awake: awake_group(sl.group); break;
            default: ::kill(sl.pid, SIGKILL); break;
          }
        }
        if (!sl.escalated && now - sl.acting > 5000) {
          fail(s_, who(), fmt::format("SLEEP in child {} on group {} not released within 5 s of {}", sl.pid,
                                      sl.group, action_name(sl.action)));
          ::kill(sl.pid, SIGKILL);
          sl.escalated = true;
        }
        if (now - sl.acting > 10000) {
          fail(s_, who(), fmt::format("SLEEP in child {} on group {} still there 5 s after SIGKILL: the daemon "
                                      "never answered its interrupt",
                                      sl.pid, sl.group));
          sleepers_.erase(sleepers_.begin() + static_cast<long>(i));
          continue;
        }
      }
      ++i;
    }
    if (winding_down && !sleepers_.empty()) ::usleep(10000);
  } while (winding_down && !sleepers_.empty() && now_ms() < give_up);
}

// --- poll and epoll ---------------------------------------------------------

void Worker::do_poll() {
  if (fds_.empty()) return;
  pollfd pf[4];
  unsigned n = 1 + static_cast<unsigned>(pick(4));
  std::size_t idx[4];
  for (unsigned i = 0; i < n; ++i) {
    idx[i] = pick(fds_.size());
    pf[i] = pollfd{fds_[idx[i]].fd, static_cast<short>(chance(3) ? POLLIN | POLLOUT : chance(2) ? POLLIN : POLLOUT), 0};
  }
  static constexpr int timeouts[] = {0, 0, 0, 1, 5, 20, 50, 100};
  int t = timeouts[pick(std::size(timeouts))];
  int r = ::poll(pf, n, t);
  int err = errno;
  if (!check(op_poll, r, err, Expect().ok(0, n), [&] { return fmt::format("poll({} fds, {} ms)", n, t); })) return;
  const short fine = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
  for (unsigned i = 0; i < n; ++i) {
    const Fd& f = fds_[idx[i]];
    if (f.kind == Kind::group && (pf[i].revents & ~fine))
      fail(s_, who(), fmt::format("poll({}) revents {:#x}: error bits on a group", fd_text(f), pf[i].revents));
  }
}

void Worker::do_epoll() {
  if (epfd_ < 0) epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    fail(s_, who(), fmt::format("epoll_create1: {}", std::strerror(errno)));
    return;
  }
  Fd* a = any_fd();
  if (a && chance(2)) {
    Fd f = *a;
    bool del = chance(3);
    epoll_event ev{};
    ev.events = EPOLLIN | (chance(3) ? unsigned{EPOLLOUT} : 0u) | (chance(3) ? unsigned{EPOLLET} : 0u) |
                (chance(4) ? unsigned{EPOLLONESHOT} : 0u);
    int r = ::epoll_ctl(epfd_, del ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, f.fd, &ev);
    Expect e;
    if (!refuse_path(f, e)) e.ok(0, 0).err(del ? ENOENT : EEXIST);
    check(op_epoll_ctl, r, errno, e, [&] { return fmt::format("epoll_ctl({}, {})", del ? "DEL" : "ADD", fd_text(f)); });
    return;
  }
  epoll_event evs[8];
  static constexpr int timeouts[] = {0, 0, 1, 10, 50};
  int t = timeouts[pick(std::size(timeouts))];
  int r = ::epoll_wait(epfd_, evs, 8, t);
  check(op_epoll_wait, r, errno, Expect().ok(0, 8), [&] { return fmt::format("epoll_wait({} ms)", t); });
}

[[noreturn]] void run_worker(const Options& o, Shared& s, int slot, unsigned generation, std::uint64_t seed,
                             std::int64_t deadline_ms) {
  Worker w(o, s, slot, generation, seed, deadline_ms);
  w.run();
  ::_exit(0);
}

}  // namespace fuzz
