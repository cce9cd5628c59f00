// message.h - one message: an immutable byte string in a single allocation.
//
// Contract: Message::create copies the bytes; MessagePtr owns the message.
// Thread safety: a message is immutable after create; ownership moves
// between threads through the queues.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace synchmess {

class Message {
 public:
  struct Deleter {
    void operator()(Message* m) const noexcept;
  };
  using Ptr = std::unique_ptr<Message, Deleter>;

  // A copy of bytes; nullptr if memory is exhausted.
  static Ptr create(std::span<const std::byte> bytes) noexcept;

  std::size_t size() const noexcept { return size_; }
  const std::byte* data() const noexcept {
    return reinterpret_cast<const std::byte*>(this + 1);
  }
  std::span<const std::byte> bytes() const noexcept { return {data(), size_}; }

 private:
  explicit Message(std::size_t size) noexcept : size_(size) {}
  std::size_t size_;
  // The bytes follow the object in the same allocation.
};

using MessagePtr = Message::Ptr;

}  // namespace synchmess
