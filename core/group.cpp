#include "core/group.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace synchmess {

Group::Group(boost::asio::any_io_executor executor, const Limits& limits, GroupOptions options)
    : descriptor_(options.descriptor),
      limits_(limits),
      listener_(options.listener),
      queue_(options.reserve_nodes),
      delays_(std::move(executor), *this) {}

Group::~Group() { delays_.shutdown(); }

bool Group::reserve(std::size_t bytes) noexcept {
  const std::size_t limit = limits_.max_storage_size.load(std::memory_order_relaxed);
  std::size_t used = stored_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit || used > limit - bytes) return false;
  } while (!stored_.compare_exchange_weak(used, used + bytes, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  return true;
}

void Group::release(std::size_t bytes) noexcept {
  stored_.fetch_sub(bytes, std::memory_order_acq_rel);
}

Result<std::size_t> Group::send(std::span<const std::byte> bytes) {
  if (bytes.size() > limits_.max_message_size.load(std::memory_order_relaxed))
    return fail(Errc::message_too_big);
  if (bytes.empty()) return 0;
  if (!reserve(storage_charge(bytes.size()))) return fail(Errc::storage_full);
  MessagePtr m = Message::create(bytes);
  if (!m) {
    release(storage_charge(bytes.size()));
    return fail(Errc::out_of_memory);
  }
  // Counted before the message becomes visible, so that a reader or the
  // delay line never lowers a counter before it was raised.
  counters_.sent();
  if (delays_.delay_ms() != 0) {
    counters_.delaying(bytes.size());
    m = delays_.defer(std::move(m));
    if (!m) return bytes.size();
    counters_.not_delayed(bytes.size());  // the delay became 0 meanwhile
  }
  counters_.queueing(bytes.size());
  if (MessagePtr back = queue_.push(std::move(m))) {
    counters_.not_queued(back->size());
    counters_.unsent();
    release(storage_charge(back->size()));
    return fail(Errc::out_of_memory);
  }
  published();
  return bytes.size();
}

MessagePtr Group::receive() noexcept {
  MessagePtr m = queue_.pop();
  if (m) {
    counters_.received(m->size());
    release(storage_charge(m->size()));
  }
  return m;
}

std::size_t Group::revoke_delayed() {
  std::size_t n = delays_.revoke();
  counters_.revoked(n);
  return n;
}

std::size_t Group::flush_delayed() {
  std::size_t n = delays_.flush();
  counters_.flushed(n);
  return n;
}

GroupStats Group::stats() const noexcept {
  GroupStats s = counters_.snapshot();
  s.queued_messages = queue_.size();
  s.stored_bytes = stored_bytes();
  s.send_delay_ms = delays_.delay_ms();
  s.sleepers = barrier_.sleepers();
  return s;
}

std::size_t Group::receive_into(std::span<std::byte> out) noexcept {
  MessagePtr m = receive();
  if (!m) return 0;
  std::size_t n = std::min(out.size(), m->size());
  if (n > 0) std::memcpy(out.data(), m->data(), n);
  return n;
}

MessagePtr Group::publish(MessagePtr m) noexcept {
  const std::size_t n = m->size();
  counters_.queueing(n);
  if (MessagePtr back = queue_.push(std::move(m))) {
    counters_.not_queued(n);
    return back;
  }
  counters_.undelayed(n);
  return nullptr;
}

void Group::published() noexcept {
  if (listener_ != nullptr) listener_->on_readable(*this);
}

void Group::discarded(std::size_t bytes) noexcept {
  counters_.undelayed(bytes);
  release(storage_charge(bytes));
}

void Group::shutdown() {
  barrier_.shutdown();
  delays_.shutdown();
}

}  // namespace synchmess
