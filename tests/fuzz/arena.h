// arena.h - hostile memory for system-call arguments: writable pages,
// read-only pages and unmapped holes side by side, and exact answers to
// "how many bytes from p are readable / writable".
//
// Contract: Arena maps its pages once (in the process that uses it: make one
// after fork).  Layout by page: 0 no access, 1-32 rw ("big", 128 KiB),
// 33 hole, 34 ro, 35-36 rw, 37 ro, 38 hole, 39-40 rw, 41 no access.  The
// holes are unmapped; the edges are PROT_NONE mappings, so a later mmap in
// the process cannot grow into them, and a 4 KiB interior hole is only
// taken by a 4 KiB mapping, which malloc never makes (holes_intact()
// checks).  Every kind of boundary (hole|rw, rw|hole, hole|ro, ro|rw,
// rw|ro, ro|hole, and the same with no-access pages) occurs.
// Addresses outside the arena count as inaccessible: only pass pointers
// from pointer() or big().  Not thread-safe (one per process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace fuzz {

class Arena {
 public:
  Arena();
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // The 128 KiB writable block (page 1).
  unsigned char* big() const { return base_ + page_; }
  std::size_t big_size() const { return 32 * page_; }

  // A random argument pointer: valid, NULL, tiny, kernel, inside a hole or
  // read-only page, or near a boundary (within `span` bytes before it, or a
  // few bytes after).  `what` names the kind for failure messages.
  unsigned char* pointer(std::mt19937_64& rng, std::size_t span, std::string& what) const;

  std::size_t readable_prefix(const void* p, std::size_t n) const;
  std::size_t writable_prefix(const void* p, std::size_t n) const;
  bool readable(const void* p, std::size_t n) const { return readable_prefix(p, n) == n; }
  bool writable(const void* p, std::size_t n) const { return writable_prefix(p, n) == n; }

  // Writes bytes into [p, p+n) even where the pages are read-only (they are
  // made writable for the copy); [p, p+n) must be readable.
  void poke(void* p, const void* bytes, std::size_t n);

  // False if something was mapped into a hole since construction.
  bool holes_intact() const;

 private:
  enum Prot : unsigned char { hole, none, ro, rw };
  Prot prot_at(std::uintptr_t a) const;
  std::size_t prefix(const void* p, std::size_t n, bool need_write) const;

  std::size_t page_;
  unsigned char* base_ = nullptr;
  static constexpr unsigned pages_ = 42;
  Prot prot_[pages_];
};

}  // namespace fuzz
