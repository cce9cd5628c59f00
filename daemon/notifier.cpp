#include "daemon/notifier.h"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include <boost/asio/steady_timer.hpp>

#include "requests/log.h"

namespace synchmess {

struct Notifier::State : std::enable_shared_from_this<State> {
  explicit State(boost::asio::io_context& io) : timer(io) {}

  void send(const std::string& message) {
    if (int r = ::sd_notify(0, message.c_str()); r < 0 && !warned.exchange(true))
      log::warn("cannot notify systemd: {}", std::strerror(-r));
  }

  void arm() {  // mu held
    timer.expires_after(period);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->ping();
    });
  }

  void ping() {
    std::lock_guard lock(mu);  // held while sending: no ping after STOPPING=1
    if (stopped) return;
    std::string message = "WATCHDOG=1";
    if (refresh) message += "\nSTATUS=" + refresh();
    send(message);
    arm();
  }

  std::mutex mu;
  boost::asio::steady_timer timer;
  std::chrono::microseconds period{0};
  std::function<std::string()> refresh;
  bool watching = false;
  bool stopped = false;
  std::atomic<bool> warned = false;
};

Notifier::Notifier(boost::asio::io_context& io) : state_(std::make_shared<State>(io)) {}

Notifier::~Notifier() {
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
  state_->timer.cancel();
}

void Notifier::ready(const std::string& status) { state_->send("READY=1\nSTATUS=" + status); }

void Notifier::status(const std::string& text) { state_->send("STATUS=" + text); }

std::chrono::microseconds Notifier::watchdog_period() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec < 2) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec / 2);
}

bool Notifier::start_watchdog(std::function<std::string()> refresh) {
  auto period = watchdog_period();
  if (period.count() == 0) return false;
  std::lock_guard lock(state_->mu);
  if (state_->stopped || state_->watching) return state_->watching;
  state_->watching = true;
  state_->period = period;
  state_->refresh = std::move(refresh);
  state_->send("WATCHDOG=1");
  state_->arm();
  log::info("systemd watchdog: pinging every {} ms", period.count() / 1000);
  return true;
}

void Notifier::stop() {
  std::lock_guard lock(state_->mu);
  if (state_->stopped) return;
  state_->stopped = true;
  state_->timer.cancel();
  state_->send("STOPPING=1");
}

}  // namespace synchmess
