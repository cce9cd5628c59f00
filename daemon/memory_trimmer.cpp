#include "daemon/memory_trimmer.h"

#include <malloc.h>

#include <algorithm>

namespace synchmess {

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& io, std::chrono::milliseconds period,
                             std::size_t threshold)
    : period_(period), threshold_(threshold), timer_(io) {}

void MemoryTrimmer::start() {
  std::lock_guard lock(mu_);
  stopped_ = false;
  arm();
}

void MemoryTrimmer::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  timer_.cancel();
}

void MemoryTrimmer::arm() {
  timer_.expires_after(period_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    check();
    std::lock_guard lock(mu_);
    if (!stopped_) arm();
  });
}

bool MemoryTrimmer::check() {
  std::lock_guard lock(mu_);
  std::size_t free_now = ::mallinfo2().fordblks;
  if (free_now < free_after_trim_ + threshold_) {
    free_after_trim_ = std::min(free_after_trim_, free_now);
    return false;
  }
  ::malloc_trim(0);
  free_after_trim_ = ::mallinfo2().fordblks;
  return true;
}

}  // namespace synchmess
