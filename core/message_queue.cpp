#include "core/message_queue.h"

#include <new>

namespace synchmess {

MessageQueue::MessageQueue(std::size_t reserve_nodes) : queue_(reserve_nodes) {}

MessageQueue::~MessageQueue() {
  Message* m = nullptr;
  while (queue_.pop(m)) MessagePtr{m};
}

MessagePtr MessageQueue::push(MessagePtr m) noexcept {
  try {
    if (!queue_.push(m.get())) return m;
  } catch (const std::bad_alloc&) {
    return m;
  }
  m.release();
  count_.fetch_add(1, std::memory_order_seq_cst);
  return nullptr;
}

MessagePtr MessageQueue::pop() noexcept {
  Message* m = nullptr;
  if (!queue_.pop(m)) return nullptr;
  count_.fetch_sub(1, std::memory_order_seq_cst);
  return MessagePtr{m};
}

}  // namespace synchmess
