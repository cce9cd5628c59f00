#include "tests/fuzz/shared.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include <fmt/format.h>

namespace fuzz {

const char* op_name(int op) {
  static constexpr const char* names[op_count] = {
      "open-master", "open-group", "close",       "dup",       "install",       "write",
      "read",        "writev",     "readv",       "set-delay", "revoke",        "flush-ioctl",
      "fsync",       "sleep",      "awake",       "poll",      "epoll-ctl",     "epoll-wait",
      "unknown-ioctl", "get-params", "set-params"};
  return op >= 0 && op < op_count ? names[op] : "wind-down";
}

Shared* make_shared_state() {
  void* m = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("synchmess-fuzz: mmap shared");
    std::abort();
  }
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  static_assert(std::atomic<std::int64_t>::is_always_lock_free);
  return new (m) Shared();
}

std::int64_t now_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string errno_name(int e) {
  const char* n = ::strerrorname_np(e);
  return n ? n : fmt::format("errno {}", e);
}

std::string Expect::describe() const {
  std::string s;
  if (success) s = lo == hi ? fmt::format("{}", lo) : hi == LONG_MAX ? fmt::format(">= {}", lo) : fmt::format("{}..{}", lo, hi);
  for (int e = 1; e < 64; ++e)
    if (errnos >> e & 1) s += (s.empty() ? "" : " or ") + errno_name(e);
  return s.empty() ? "nothing" : s;
}

namespace {
void print_line(Shared& s, const std::string& line) {
  if (s.printed.fetch_add(1) >= max_printed) return;
  std::string l = line + "\n";
  [[maybe_unused]] auto n = ::write(2, l.data(), l.size());
}
}  // namespace

bool record(Shared& s, Op op, long ret, int err, const Expect& exp, const std::string& who,
            const std::function<std::string()>& what) {
  int slot = ret >= 0 ? 0 : (err > 0 && err < max_errno ? err : max_errno - 1);
  s.tally[op][slot].fetch_add(1, std::memory_order_relaxed);
  if (exp.accepts(ret, err)) return true;
  s.unexpected[op].fetch_add(1);
  s.failures.fetch_add(1);
  std::string result = ret >= 0 ? fmt::format("{}", ret) : fmt::format("-1 {}", errno_name(err));
  print_line(s, fmt::format("UNEXPECTED {}: {} = {} (expected {})", who, what(), result, exp.describe()));
  return false;
}

void fail(Shared& s, const std::string& who, const std::string& msg) {
  s.failures.fetch_add(1);
  print_line(s, fmt::format("FAILURE {}: {}", who, msg));
}

}  // namespace fuzz
