#include "tests/fuzz/arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace fuzz {

Arena::Arena() : page_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
  void* m = ::mmap(nullptr, pages_ * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("synchmess-fuzz: mmap");
    std::abort();
  }
  base_ = static_cast<unsigned char*>(m);
  for (unsigned i = 0; i < pages_; ++i) prot_[i] = rw;
  for (unsigned i : {0u, 41u}) prot_[i] = none;
  for (unsigned i : {33u, 38u}) prot_[i] = hole;
  for (unsigned i : {34u, 37u}) prot_[i] = ro;
  std::memset(base_, 0x77, pages_ * page_);
  for (unsigned i = 0; i < pages_; ++i) {
    unsigned char* pg = base_ + i * page_;
    if (prot_[i] == hole) ::munmap(pg, page_);
    if (prot_[i] == none) ::mprotect(pg, page_, PROT_NONE);
    if (prot_[i] == ro) ::mprotect(pg, page_, PROT_READ);
  }
}

Arena::~Arena() { ::munmap(base_, pages_ * page_); }

Arena::Prot Arena::prot_at(std::uintptr_t a) const {
  auto b = reinterpret_cast<std::uintptr_t>(base_);
  if (a < b || a >= b + pages_ * page_) return hole;
  return prot_[(a - b) / page_];
}

std::size_t Arena::prefix(const void* p, std::size_t n, bool need_write) const {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  std::size_t done = 0;
  while (done < n) {
    std::uintptr_t at = a + done;
    if (at < a) break;  // wrapped around
    Prot pr = prot_at(at);
    if (pr == hole || pr == none || (need_write && pr == ro)) break;
    std::size_t to_page_end = page_ - (at % page_);
    done += std::min(to_page_end, n - done);
  }
  return std::min(done, n);
}

std::size_t Arena::readable_prefix(const void* p, std::size_t n) const { return prefix(p, n, false); }
std::size_t Arena::writable_prefix(const void* p, std::size_t n) const { return prefix(p, n, true); }

void Arena::poke(void* p, const void* bytes, std::size_t n) {
  bool touches_ro = false;
  auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::size_t off = 0; off < n; off += page_ - ((a + off) % page_))
    if (prot_at(a + off) == ro) touches_ro = true;
  if (n && prot_at(a + n - 1) == ro) touches_ro = true;
  if (touches_ro)
    for (unsigned i = 0; i < pages_; ++i)
      if (prot_[i] == ro) ::mprotect(base_ + i * page_, page_, PROT_READ | PROT_WRITE);
  std::memmove(p, bytes, n);
  if (touches_ro)
    for (unsigned i = 0; i < pages_; ++i)
      if (prot_[i] == ro) ::mprotect(base_ + i * page_, page_, PROT_READ);
}

bool Arena::holes_intact() const {
  unsigned char v;
  for (unsigned i = 0; i < pages_; ++i)
    if (prot_[i] == hole && (::mincore(base_ + i * page_, page_, &v) == 0 || errno != ENOMEM)) return false;
  return true;
}

unsigned char* Arena::pointer(std::mt19937_64& rng, std::size_t span, std::string& what) const {
  auto pick = [&](std::uint64_t n) { return static_cast<std::size_t>(rng() % n); };
  switch (pick(12)) {
    case 0:
      what = "NULL";
      return nullptr;
    case 1:
      what = "(void*)1";
      return reinterpret_cast<unsigned char*>(1);
    case 2:
      what = "kernel address";
      return reinterpret_cast<unsigned char*>(0xffff888000000000ull);
    case 3:
      what = "unmapped";
      return base_ + 33 * page_ + pick(page_);
    case 4:
      what = "read-only";
      return base_ + 34 * page_ + pick(page_ / 2);
    case 5:
    case 6:
    case 7: {
      // Just before or just after one of the boundaries.
      static constexpr unsigned bounds[] = {1, 33, 34, 35, 37, 38, 39, 41};
      static constexpr const char* names[] = {"noaccess|rw", "rw|hole", "hole|ro", "ro|rw",
                                              "rw|ro",       "ro|hole", "hole|rw", "rw|noaccess"};
      unsigned k = static_cast<unsigned>(pick(8));
      std::size_t before = pick(std::min(span, page_ - 1) + 1);  // stays in the arena
      std::size_t after = pick(4) == 0 ? pick(16) : 0;
      what = fmt::format("{} boundary{:+d}", names[k], static_cast<long>(after) - static_cast<long>(before));
      return base_ + bounds[k] * page_ - before + after;
    }
    default:
      what = "valid";
      return base_ + page_ + pick(big_size() / 2);
  }
}

}  // namespace fuzz
