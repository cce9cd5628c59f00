// delay_line.h - the delayed messages of one group and their single timer.
//
// Contract:
//  - A message deferred with delay D at time t is handed to the sink at or
//    after t + D, in the order the defers took effect.  The delay can change
//    only while nothing is pending, so deadlines never decrease along the
//    line: one Boost.Asio steady_timer, armed for the head, serves the
//    whole line with O(1) work per message.
//  - flush() hands every pending message to the sink now, in order;
//    revoke() destroys them; shutdown() destroys them and stops the timer.
//  - Publication order: the sink's publish() runs under the line's lock, so
//    timer and flush publications never interleave out of order.  The sink's
//    published() runs after the lock is released (for notifications).
// Thread safety: every member may be called from any thread.  The timer's
// handler runs on the executor's threads.  The owner must call shutdown()
// and stop running the executor before destroying the line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/errc.h"
#include "core/message.h"

namespace synchmess {

class DelaySink {
 public:
  // Take m into the readable queue; give it back if that is impossible now
  // (memory exhausted): the line keeps it and retries shortly.
  virtual MessagePtr publish(MessagePtr m) noexcept = 0;
  // One or more messages were published (called without the line's lock).
  virtual void published() noexcept = 0;
  // A pending message of `bytes` bytes was destroyed (revoke, shutdown).
  virtual void discarded(std::size_t bytes) noexcept = 0;

 protected:
  ~DelaySink() = default;
};

class DelayLine {
 public:
  using Clock = std::chrono::steady_clock;

  DelayLine(boost::asio::any_io_executor executor, DelaySink& sink);
  DelayLine(const DelayLine&) = delete;
  DelayLine& operator=(const DelayLine&) = delete;

  unsigned delay_ms() const noexcept { return delay_ms_.load(std::memory_order_acquire); }
  // Errc::delay_pending while messages are pending (keeps FIFO order).
  Result<void> set_delay(unsigned ms);

  // Queue m for delay_ms(); returns m untouched when the delay is 0, for
  // the caller to publish at once.
  MessagePtr defer(MessagePtr m);
  // The deadline of a message deferred at `now` for `ms`: now + ms rounded
  // up to the next whole millisecond of the steady clock (at most 1 ms
  // late; the module's timers were jiffies, up to 4 ms).  Every line's
  // deadlines fall on the same ticks, so the timers that expire together
  // are served by one wake-up of the executor, not one per message.
  static Clock::time_point due_for(Clock::time_point now, unsigned ms);

  std::size_t flush();   // messages published
  std::size_t revoke();  // messages destroyed
  void shutdown();
  std::size_t pending() const;
  // Runs f() under the line's lock: no defer, publication, revoke or flush
  // runs meanwhile (the group's growth and repair).  f must not call the line.
  template <class F>
  void locked(F&& f) {
    std::lock_guard lock(mu_);
    f();
  }

 private:
  struct Pending {
    Clock::time_point due;
    MessagePtr message;
  };
  void arm(Clock::time_point due);  // needs mu_
  void on_timer();
  std::size_t publish_due(Clock::time_point limit);  // needs mu_
  std::size_t destroy_all();                         // needs mu_

  DelaySink& sink_;
  std::atomic<unsigned> delay_ms_{0};
  mutable std::mutex mu_;
  std::deque<Pending> pending_;  // deadlines non-decreasing
  boost::asio::steady_timer timer_;
  bool armed_ = false;  // a wait is outstanding
  Clock::time_point armed_for_;  // its deadline, when armed_
  bool stopped_ = false;
};

}  // namespace synchmess
