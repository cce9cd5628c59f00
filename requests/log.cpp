#include "requests/log.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <chrono>
#include <mutex>
#include <string>

namespace synchmess::log {

// When stderr is a socket (journald's stream under systemd), a line is sent
// without waiting: a journal that stops reading loses lines instead of
// blocking the thread that logs (a pipe or a terminal still blocks).
void write_line(std::string_view level, std::string_view text) noexcept {
  static std::atomic<int> is_socket{-1};  // -1 unknown, 0 no, 1 yes
  try {
    std::string line = fmt::format("synchmessd: {}: {}\n", level, text);
    if (is_socket.load(std::memory_order_relaxed) != 0) {
      ssize_t n = ::send(STDERR_FILENO, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0 || errno != ENOTSOCK) {
        is_socket.store(1, std::memory_order_relaxed);
        return;
      }
      is_socket.store(0, std::memory_order_relaxed);
    }
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
  } catch (...) {
    // Logging must never take the daemon down.
  }
}

// A fixed window per minute: simple, and enough to bound the volume.
bool limited_line_allowed(unsigned long* dropped) noexcept {
  using Clock = std::chrono::steady_clock;
  static std::mutex mu;
  static Clock::time_point window;
  static unsigned in_window = 0;
  static unsigned long dropped_total = 0;
  std::lock_guard lock(mu);
  auto now = Clock::now();
  if (now - window >= std::chrono::minutes(1)) {
    window = now;
    in_window = 0;
  }
  if (in_window >= limited_burst) {
    ++dropped_total;
    return false;
  }
  ++in_window;
  *dropped = dropped_total;
  dropped_total = 0;
  return true;
}

}  // namespace synchmess::log
