// node_pool.h - the allocator of a message queue's nodes.
//
// Why hand-written: Boost.Lockfree allocates each queue node on its own,
// with the node's cache-line alignment, which glibc serves with about 128
// bytes for a 64-byte node; its free-list keeps every node until the queue
// dies anyway, so nodes never need to be freed one by one.  This allocator
// carves them from slabs (4 KiB first, doubling up to 256 KiB) mapped with
// mmap, so a node costs its own size and the nodes stay apart from the heap
// that messages use (a drained heap can then be trimmed).
//
// Contract: allocate(n) returns storage for n objects or throws
// std::bad_alloc; deallocate does nothing; the slabs are freed when the
// last copy of the allocator is destroyed.  Copies (and rebinds) share the
// slabs.
// Thread safety: allocate takes a mutex.  Boost.Lockfree calls it only when
// its free-list is empty (the queue holds more messages than ever before),
// so the steady write/read path never takes it.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace synchmess {

class NodeSlabs {
 public:
  NodeSlabs() = default;
  NodeSlabs(const NodeSlabs&) = delete;
  NodeSlabs& operator=(const NodeSlabs&) = delete;
  ~NodeSlabs() {
    for (auto [s, size] : slabs_) ::munmap(s, size);
  }

  void* allocate(std::size_t bytes, std::size_t align) {
    std::lock_guard lock(mu_);
    std::size_t at = (used_ + align - 1) & ~(align - 1);
    if (slabs_.empty() || at + bytes > size_) {
      std::size_t size = std::clamp<std::size_t>(total_, first_slab, largest_slab);
      size = std::max(size, (bytes + page - 1) & ~(page - 1));
      if (align > page) throw std::bad_alloc();  // mmap aligns to pages only
      void* slab = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (slab == MAP_FAILED) throw std::bad_alloc();
      slabs_.push_back({slab, size});
      size_ = size;
      total_ += size;
      at = 0;
    }
    used_ = at + bytes;
    return static_cast<char*>(slabs_.back().first) + at;
  }

  // Bytes held in slabs (for tests and statistics).
  std::size_t bytes() const {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  static constexpr std::size_t page = 4096;
  static constexpr std::size_t first_slab = 4 * 1024;
  static constexpr std::size_t largest_slab = 256 * 1024;
  mutable std::mutex mu_;
  std::vector<std::pair<void*, std::size_t>> slabs_;
  std::size_t size_ = 0;   // of the last slab
  std::size_t used_ = 0;   // of the last slab
  std::size_t total_ = 0;  // of all slabs
};

template <class T>
class NodeAllocator {
 public:
  using value_type = T;

  NodeAllocator() : slabs_(std::make_shared<NodeSlabs>()) {}
  template <class U>
  NodeAllocator(const NodeAllocator<U>& o) noexcept : slabs_(o.slabs()) {}

  T* allocate(std::size_t n) { return static_cast<T*>(slabs_->allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T*, std::size_t) noexcept {}

  const std::shared_ptr<NodeSlabs>& slabs() const noexcept { return slabs_; }
  template <class U>
  bool operator==(const NodeAllocator<U>& o) const noexcept {
    return slabs_ == o.slabs();
  }

 private:
  std::shared_ptr<NodeSlabs> slabs_;
};

}  // namespace synchmess
