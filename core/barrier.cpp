#include "core/barrier.h"

#include <algorithm>
#include <utility>

namespace synchmess {

Barrier::Ticket Barrier::sleep(Handler h) {
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      Ticket t = next_ticket_++;
      sleepers_.push_back({t, std::move(h)});
      count_.store(sleepers_.size(), std::memory_order_relaxed);
      return t;
    }
  }
  h(fail(Errc::shutting_down));
  return 0;
}

unsigned Barrier::awake() {
  std::vector<Sleeper> woken;
  {
    std::lock_guard lock(mu_);
    woken.swap(sleepers_);
    count_.store(0, std::memory_order_relaxed);
  }
  for (auto& s : woken) s.handler(Result<void>{});
  return static_cast<unsigned>(woken.size());
}

bool Barrier::cancel(Ticket t, Errc why) {
  Handler h;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(sleepers_.begin(), sleepers_.end(),
                           [t](const Sleeper& s) { return s.ticket == t; });
    if (it == sleepers_.end()) return false;
    h = std::move(it->handler);
    sleepers_.erase(it);
    count_.store(sleepers_.size(), std::memory_order_relaxed);
  }
  h(fail(why));
  return true;
}

void Barrier::shutdown() {
  std::vector<Sleeper> cancelled;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cancelled.swap(sleepers_);
    count_.store(0, std::memory_order_relaxed);
  }
  for (auto& s : cancelled) s.handler(fail(Errc::interrupted));
}

}  // namespace synchmess
