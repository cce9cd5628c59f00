// message.cpp - see message.h.
#include "message.h"

#include <cstdio>
#include <cstring>

namespace synchmess::bench {
namespace {

// FNV-1a, 64 bit: cheap and catches truncation, shifts and bit flips.
std::uint64_t fnv1a(const std::byte* p, std::size_t n, std::uint64_t h) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= std::uint64_t(p[i]);
    h *= 0x100000001B3ULL;
  }
  return h;
}

std::uint64_t checksum_of(std::span<const std::byte> msg) {
  const std::size_t trailer_at = msg.size() - sizeof(MessageTrailer);
  constexpr std::size_t sum_at = offsetof(MessageTrailer, checksum);
  std::uint64_t h = fnv1a(msg.data(), trailer_at + sum_at,
                          0xCBF29CE484222325ULL);
  return h;
}

void store_trailer(std::span<std::byte> buf, const MessageTrailer& t) {
  std::memcpy(buf.data() + buf.size() - sizeof(t), &t, sizeof(t));
}

MessageTrailer load_trailer(std::span<const std::byte> msg) {
  MessageTrailer t;
  std::memcpy(&t, msg.data() + msg.size() - sizeof(t), sizeof(t));
  return t;
}

}  // namespace

void encode_message(std::span<std::byte> buf, std::uint32_t producer,
                    std::uint64_t seq, std::uint64_t sent_ns) {
  const std::size_t text_room = buf.size() - sizeof(MessageTrailer);
  std::memset(buf.data(), 0, buf.size());
  char text[96];
  int n = std::snprintf(text, sizeof(text), "SynchMess producer %u message %llu",
                        producer, static_cast<unsigned long long>(seq));
  std::size_t len = n < 0 ? 0 : std::size_t(n);
  if (len > text_room - 1) len = text_room - 1;
  std::memcpy(buf.data(), text, len);
  MessageTrailer t{kMessageMagic, producer, seq, sent_ns, 0};
  store_trailer(buf, t);
  t.checksum = checksum_of(buf);
  store_trailer(buf, t);
}

void restamp_message(std::span<std::byte> buf, std::uint64_t sent_ns) {
  MessageTrailer t = load_trailer(buf);
  t.sent_ns = sent_ns;
  store_trailer(buf, t);
  t.checksum = checksum_of(buf);
  store_trailer(buf, t);
}

bool verify_message(std::span<const std::byte> msg, std::size_t expected_size,
                    MessageTrailer* out) {
  if (msg.size() != expected_size || msg.size() < kMinMessageSize) return false;
  MessageTrailer t = load_trailer(msg);
  if (t.magic != kMessageMagic || t.checksum != checksum_of(msg)) return false;
  *out = t;
  return true;
}

}  // namespace synchmess::bench
