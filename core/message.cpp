#include "core/message.h"

#include <cstring>
#include <new>

namespace synchmess {

static_assert(alignof(Message) <= alignof(std::max_align_t));

Message::Ptr Message::create(std::span<const std::byte> bytes) noexcept {
  void* raw = ::operator new(sizeof(Message) + bytes.size(), std::nothrow);
  if (raw == nullptr) return nullptr;
  auto* m = new (raw) Message(bytes.size());
  if (!bytes.empty())
    std::memcpy(reinterpret_cast<std::byte*>(m + 1), bytes.data(), bytes.size());
  return Ptr(m);
}

void Message::Deleter::operator()(Message* m) const noexcept {
  m->~Message();
  ::operator delete(m);
}

}  // namespace synchmess
