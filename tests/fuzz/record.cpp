#include "tests/fuzz/record.h"

#include <cstring>

#include <fmt/format.h>

namespace fuzz {
namespace {

constexpr std::size_t header = 16;
constexpr unsigned char tiny_base = 0xE0;
constexpr unsigned char magic[4] = {'S', 'M', 'F', 'Z'};

unsigned char tiny_byte(std::size_t len, std::size_t i) {
  return static_cast<unsigned char>(0x5A + 13 * i + 29 * len);
}
unsigned char body_byte(std::uint32_t tag, std::size_t i) {
  return static_cast<unsigned char>((tag >> ((i & 3) * 8)) ^ (i * 131) ^ (i >> 8));
}
std::uint32_t header_check(std::uint32_t len, std::uint32_t tag) {
  return (len * 0x9E3779B1u) ^ (tag * 0x85EBCA77u) ^ 0xC2B2AE3Du;
}
void put32(unsigned char* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
std::uint32_t get32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

void fill_record(unsigned char* p, std::size_t len, std::uint32_t tag) {
  if (len < header) {
    p[0] = static_cast<unsigned char>(tiny_base + len);
    for (std::size_t i = 1; i < len; ++i) p[i] = tiny_byte(len, i);
    return;
  }
  std::memcpy(p, magic, 4);
  auto len32 = static_cast<std::uint32_t>(len);
  put32(p + 4, len32);
  put32(p + 8, tag);
  put32(p + 12, header_check(len32, tag));
  for (std::size_t i = header; i < len; ++i) p[i] = body_byte(tag, i);
}

Validation validate(const unsigned char* p, std::size_t len, bool whole) {
  Validation v;
  auto bad = [&](std::size_t at, const std::string& what) {
    v.ok = false;
    v.why = fmt::format("byte {} of {} (record {}): {}", at, len, v.records, what);
    return v;
  };
  std::size_t at = 0;
  while (at < len) {
    std::size_t left = len - at;
    const unsigned char* r = p + at;
    if (r[0] > tiny_base && r[0] < tiny_base + header) {
      std::size_t rlen = r[0] - tiny_base;
      std::size_t have = std::min(rlen, left);
      for (std::size_t i = 1; i < have; ++i)
        if (r[i] != tiny_byte(rlen, i)) return bad(at + i, "tiny record corrupted");
      if (have < rlen) return whole ? bad(at, "tiny record cut short") : v;
      ++v.records;
      at += rlen;
      continue;
    }
    for (std::size_t i = 0; i < 4 && i < left; ++i)
      if (r[i] != magic[i]) return bad(at + i, fmt::format("not a record start (0x{:02x})", r[i]));
    if (left < header) return whole ? bad(at, "record header cut short") : v;
    std::uint32_t rlen = get32(r + 4), tag = get32(r + 8);
    if (get32(r + 12) != header_check(rlen, tag) || rlen < header)
      return bad(at, fmt::format("bad record header (length {})", rlen));
    std::size_t have = std::min<std::size_t>(rlen, left);
    for (std::size_t i = header; i < have; ++i)
      if (r[i] != body_byte(tag, i)) return bad(at + i, "record body corrupted");
    if (have < rlen) return whole ? bad(at, fmt::format("record of {} bytes cut at {}", rlen, have)) : v;
    ++v.records;
    at += rlen;
  }
  return v;
}

}  // namespace fuzz
