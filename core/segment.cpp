#include "core/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace synchmess {

Result<std::unique_ptr<Segment>> Segment::create(unsigned descriptor, std::uint64_t holds,
                                                 std::uint64_t generation, std::uint64_t max_message,
                                                 std::uint64_t max_storage) {
  std::unique_ptr<Segment> s(new Segment);
  s->holds_ = holds;
  s->generation_ = generation;
  s->bytes_ = shm_ring_segment_bytes(holds);
  std::string name = "synchmess-group-" + std::to_string(descriptor);
  s->fd_ = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (s->fd_ < 0) return fail(Errc::out_of_memory);
  if (::ftruncate(s->fd_, static_cast<off_t>(s->bytes_)) != 0 ||
      ::fcntl(s->fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return fail(Errc::out_of_memory);
  s->mem_ = ::mmap(nullptr, s->bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, s->fd_, 0);
  if (s->mem_ == MAP_FAILED) {
    s->mem_ = nullptr;
    return fail(Errc::out_of_memory);
  }
  if (shm_ring_format(&s->ring_, s->mem_, s->bytes_, max_message, max_storage, generation, 1) != 0)
    return fail(Errc::out_of_memory);
  return s;
}

Segment::~Segment() {
  if (mem_ != nullptr) ::munmap(mem_, bytes_);
  if (fd_ >= 0) ::close(fd_);
}

void Segment::reformat(std::uint64_t max_message, std::uint64_t max_storage) noexcept {
  // Zero the data by giving its pages back (lazily zero again), rather
  // than writing every byte of what may be a very large segment.
  bool zero = ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, SHM_RING_HEADER_BYTES,
                          static_cast<off_t>(bytes_ - SHM_RING_HEADER_BYTES)) == 0;
  // The clients' counts so far stay in the totals (format zeroes them).
  std::uint64_t sent = 0, received = 0;
  fast_counts(sent, received);
  fast_sent_base_.store(sent, std::memory_order_relaxed);
  fast_received_base_.store(received, std::memory_order_relaxed);
  shm_ring r{};
  (void)shm_ring_format(&r, mem_, bytes_, max_message, max_storage, generation_, zero ? 1 : 0);
  sweep = {};
}

void Segment::fast_counts(std::uint64_t& sent, std::uint64_t& received) const noexcept {
  std::uint64_t s = 0, r = 0;
  shm_ring_fast_counts(&ring_, &s, &r);
  sent = fast_sent_base_.load(std::memory_order_relaxed) + std::min(s, fast_count_limit);
  received = fast_received_base_.load(std::memory_order_relaxed) + std::min(r, fast_count_limit);
}

void Segment::release_data() noexcept {
  if (released) return;
  released = true;
  (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, SHM_RING_HEADER_BYTES,
                    static_cast<off_t>(bytes_ - SHM_RING_HEADER_BYTES));
}

}  // namespace synchmess
