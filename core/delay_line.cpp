#include "core/delay_line.h"

#include <utility>

namespace synchmess {

namespace {
// When the sink cannot take a message (memory exhausted), try again after:
constexpr auto retry_after = std::chrono::milliseconds(10);
}  // namespace

DelayLine::DelayLine(boost::asio::any_io_executor executor, DelaySink& sink)
    : sink_(sink), timer_(std::move(executor)) {}

Result<void> DelayLine::set_delay(unsigned ms) {
  std::lock_guard lock(mu_);
  if (!pending_.empty()) return fail(Errc::delay_pending);
  delay_ms_.store(ms, std::memory_order_release);
  return {};
}

DelayLine::Clock::time_point DelayLine::due_for(Clock::time_point now, unsigned ms) {
  auto exact = now + std::chrono::milliseconds(ms);
  return Clock::time_point(
      std::chrono::ceil<std::chrono::milliseconds>(exact.time_since_epoch()));
}

MessagePtr DelayLine::defer(MessagePtr m) {
  std::lock_guard lock(mu_);
  unsigned ms = delay_ms_.load(std::memory_order_relaxed);
  if (ms == 0 || stopped_) return m;
  auto due = due_for(Clock::now(), ms);
  pending_.push_back({due, std::move(m)});
  // A flush or revoke may have left the timer armed for a later deadline
  // than this one (the delay changed since): bring it forward.
  if (!armed_ || due < armed_for_) arm(due);
  return nullptr;
}

// Re-arming cancels the outstanding wait; if that wait had already fired,
// its on_timer re-arms for the head, which is never later than `due`.
void DelayLine::arm(Clock::time_point due) {
  armed_ = true;
  armed_for_ = due;
  timer_.expires_at(due);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec != boost::asio::error::operation_aborted) on_timer();
  });
}

void DelayLine::on_timer() {
  std::size_t n = 0;
  {
    std::lock_guard lock(mu_);
    armed_ = false;
    if (stopped_) return;
    n = publish_due(Clock::now());
    if (!pending_.empty()) {
      // Either the head is not due yet, or the sink refused it.
      auto next = pending_.front().due;
      arm(n == 0 && next <= Clock::now() ? Clock::now() + retry_after : next);
    }
  }
  if (n > 0) sink_.published();
}

std::size_t DelayLine::publish_due(Clock::time_point limit) {
  std::size_t n = 0;
  while (!pending_.empty() && pending_.front().due <= limit) {
    MessagePtr back = sink_.publish(std::move(pending_.front().message));
    if (back) {  // not taken: keep it at the head, in order
      pending_.front().message = std::move(back);
      break;
    }
    pending_.pop_front();
    ++n;
  }
  return n;
}

std::size_t DelayLine::flush() {
  std::size_t n = 0;
  bool left = false;
  {
    std::lock_guard lock(mu_);
    n = publish_due(Clock::time_point::max());
    left = !pending_.empty();
    // An armed timer that later finds the line empty just returns.
    if (left && !armed_) arm(Clock::now() + retry_after);
  }
  if (n > 0) sink_.published();
  return n;
}

std::size_t DelayLine::destroy_all() {
  std::size_t n = pending_.size();
  for (auto& p : pending_) sink_.discarded(p.message->size());
  pending_.clear();
  return n;
}

std::size_t DelayLine::revoke() {
  std::lock_guard lock(mu_);
  return destroy_all();
}

void DelayLine::shutdown() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  destroy_all();
  timer_.cancel();
}

std::size_t DelayLine::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

}  // namespace synchmess
