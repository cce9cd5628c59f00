#include "requests/log.h"

#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>

namespace synchmess::log {

void write_line(std::string_view level, std::string_view text) noexcept {
  try {
    std::string line = fmt::format("synchmessd: {}: {}\n", level, text);
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
