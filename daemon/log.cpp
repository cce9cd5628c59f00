#include "daemon/log.h"

#include <unistd.h>

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

}  // namespace synchmess::log
