// message.h - the benchmark's self-checking message format.
//
// Contract: a message is exactly `size` bytes (kMinSize <= size).  It opens
// with the original benchmark's text, "SynchMess producer P message S",
// NUL-padded, and ends with a binary trailer: magic, producer id, sequence
// number (per producer, dense from 0, assigned only to writes that
// succeeded), the CLOCK_MONOTONIC send time and a checksum over every other
// byte.  verify() rejects a wrong length, magic or checksum.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace synchmess::bench {

struct MessageTrailer {
  std::uint32_t magic;
  std::uint32_t producer;
  std::uint64_t seq;
  std::uint64_t sent_ns;
  std::uint64_t checksum;
};

inline constexpr std::uint32_t kMessageMagic = 0x53594E43;  // "SYNC"
inline constexpr std::size_t kMinMessageSize = sizeof(MessageTrailer) + 8;

// Fills buf (its whole size) with message (producer, seq) sent at sent_ns.
void encode_message(std::span<std::byte> buf, std::uint32_t producer,
                    std::uint64_t seq, std::uint64_t sent_ns);

// Refreshes only the send time and checksum of an encoded message (the
// retry path after a full group keeps the same producer and sequence).
void restamp_message(std::span<std::byte> buf, std::uint64_t sent_ns);

// True when msg is a well-formed message of exactly expected_size bytes;
// then *out holds its trailer.
bool verify_message(std::span<const std::byte> msg, std::size_t expected_size,
                    MessageTrailer* out);

}  // namespace synchmess::bench
