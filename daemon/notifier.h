// notifier.h - systemd service notifications (Type=notify) through
// libsystemd's sd_notify.
//
// Contract: without $NOTIFY_SOCKET every call does nothing.
//  - ready(status) sends READY=1 and STATUS=status (call once the master
//    device exists); status(text) sends STATUS=text.
//  - start_watchdog(refresh) does nothing unless the unit asks for a watchdog
//    (sd_watchdog_enabled: $WATCHDOG_USEC set, $WATCHDOG_PID unset or ours).
//    Then it sends WATCHDOG=1 at once and every half interval from a
//    steady_timer on the io_context, so the pings stop when the io_context
//    stops serving; with a refresh function each ping also sends
//    STATUS=refresh().  Returns whether the watchdog runs.
//  - stop() sends STOPPING=1 and cancels the timer; no ping follows it.
// A failed send is logged once, never fatal.
// Thread safety: every member may be called from any thread; refresh runs on
// the io_context.  Pending timer handlers keep the shared state alive, so the
// Notifier may be destroyed before the io_context.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

namespace synchmess {

class Notifier {
 public:
  explicit Notifier(boost::asio::io_context& io);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void ready(const std::string& status);
  void status(const std::string& text);
  bool start_watchdog(std::function<std::string()> refresh = {});
  void stop();

  // The ping period start_watchdog() uses (half of $WATCHDOG_USEC), or zero
  // when the unit asks for no watchdog.
  static std::chrono::microseconds watchdog_period();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace synchmess
