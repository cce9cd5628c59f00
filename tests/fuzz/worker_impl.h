// worker_impl.h - the Worker class behind run_worker() (worker.h), split
// over worker.cpp (control, open/close, ioctls, SLEEP, poll) and
// worker_io.cpp (read, write, readv, writev).  Internal to the fuzzer.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/fuzz/arena.h"
#include "tests/fuzz/options.h"
#include "tests/fuzz/shared.h"

namespace fuzz {

// Above the user address space: access_ok() refuses it before anything.
bool kernel_address(const void* p);

inline constexpr std::size_t max_rw = 0x7ffff000;  // the kernel's MAX_RW_COUNT (4 KiB pages)
inline constexpr unsigned max_fds = 40;
inline constexpr unsigned max_sleepers = 4;
inline constexpr std::size_t scratch_size = 140 * 1024;

enum class Kind { master, group, path };
struct Fd {
  int fd;
  Kind kind;
  unsigned group;  // for Kind::group
  int acc;         // O_RDONLY, O_WRONLY or O_RDWR
};
enum Action { act_kill, act_sigint, act_sigusr1, act_awake, act_others };
struct Sleeper {
  pid_t pid;
  Kind kind;
  unsigned group;
  int action;
  std::int64_t due;          // when to act
  std::int64_t acting = 0;   // when we first acted
  std::int64_t last = 0;     // last signal / AWAKE sent
  bool escalated = false;    // SIGKILLed because the action did not release it
};

class Worker {
 public:
  Worker(const Options& o, Shared& s, int slot, unsigned gen, std::uint64_t seed, std::int64_t deadline)
      : o_(o), s_(s), slot_(slot), gen_(gen), seed_(seed), deadline_(deadline), rng_(seed),
        root_(::geteuid() == 0), known_(o.groups + 1, false) {}
  void run();

 private:
  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }
  bool chance(unsigned n) { return pick(n) == 0; }
  std::string who() const { return fmt::format("worker {} gen {} seed {:#x} op #{}", slot_, gen_, seed_, n_); }
  std::string path_of(const std::string& name) const { return o_.dev_dir + "/" + name; }
  std::string group_path(unsigned g) const { return path_of(fmt::format("synchmess{}", g)); }
  unsigned hot_group() { return static_cast<unsigned>(chance(3) ? 1 + pick(o_.groups) : 1 + pick(std::min(8u, o_.groups))); }
  bool check(Op op, long ret, int err, const Expect& e, const std::function<std::string()>& what) {
    return record(s_, op, ret, err, e, who(), what);
  }
  Fd* any_fd() { return fds_.empty() ? nullptr : &fds_[pick(fds_.size())]; }
  std::string fd_text(const Fd& f) const {
    const char* acc = f.acc == O_RDONLY ? "r" : f.acc == O_WRONLY ? "w" : "rw";
    if (f.kind == Kind::master) return fmt::format("master fd {} ({})", f.fd, acc);
    if (f.kind == Kind::path) return fmt::format("O_PATH fd {}", f.fd);
    return fmt::format("group {} fd {} ({})", f.group, f.fd, acc);
  }
  // The generic errors of an operation on f: O_PATH fds refuse everything.
  bool refuse_path(const Fd& f, Expect& e) {
    if (f.kind != Kind::path) return false;
    e.err(EBADF);
    return true;
  }
  // A random count for read/write: the edges around max_message, and huge.
  std::size_t random_count();
  // A buffer for count bytes: mostly in the big block, else hostile.
  unsigned char* random_buffer(std::size_t count, std::string& what);

  void step();
  void do_open(bool master);
  void do_close();
  void do_dup();
  void do_install();
  void do_write();
  void do_read();
  void do_writev();
  void do_readv();
  void do_hoard();
  void do_set_delay();
  void do_simple_ioctl(Op op, unsigned long cmd);
  void do_fsync();
  void do_sleep();
  void do_awake();
  void do_poll();
  void do_epoll();
  void do_unknown_ioctl();
  void do_params(bool set);
  void tend_sleepers(bool winding_down);
  void sleeper_done(const Sleeper& sl, int status);
  void awake_group(unsigned g);
  void check_message(const unsigned char* p, long got, std::size_t asked, const std::function<std::string()>& what);
  // Puts one record of len bytes at p (len bytes from p must be readable).
  void put_record(unsigned char* p, std::size_t len);

  const Options& o_;
  Shared& s_;
  int slot_;
  unsigned gen_;
  std::uint64_t seed_;
  std::int64_t deadline_;
  std::mt19937_64 rng_;
  bool root_;
  std::vector<bool> known_;  // groups this process saw installed
  std::vector<Fd> fds_;
  std::vector<Sleeper> sleepers_;
  int epfd_ = -1;
  std::uint64_t n_ = 0;
  Arena arena_;
  std::vector<unsigned char> scratch_ = std::vector<unsigned char>(scratch_size);  // records, gathers
};

}  // namespace fuzz
