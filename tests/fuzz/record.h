// record.h - the self-describing content of every message the fuzzer writes.
//
// Contract: a message is one or more records laid end to end (one per
// write, or one per iovec of a writev, which FUSE may merge into one
// message).  A record of 1..15 bytes is "tiny": its first byte is 0xE0 + its
// length; a record of 16 bytes or more starts with "SMFZ", its length and a
// tag.  Every byte is a function of (length, tag, position), so validate()
// finds a truncated, split, merged-in-the-middle or corrupted message.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fuzz {

// Writes one record of exactly len bytes (len >= 1) at p.
void fill_record(unsigned char* p, std::size_t len, std::uint32_t tag);

struct Validation {
  bool ok = true;
  std::size_t records = 0;  // complete records seen
  std::string why;          // set when !ok
};

// Checks that [p, p+len) is a sequence of whole records (whole == true:
// what a read returned for a whole message), or whole records followed by
// the start of one (whole == false: a read whose buffer may have cut it).
Validation validate(const unsigned char* p, std::size_t len, bool whole);

}  // namespace fuzz
