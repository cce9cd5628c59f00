#include "fuse-fs/remote_write.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace synchmess {
namespace {

constexpr std::size_t page_size = 4096;  // x86-64; a smaller chunk is only slower
constexpr std::size_t max_chunks = max_remote_write / page_size + 2;

struct Chunk {
  std::uintptr_t start;
  std::size_t offset;  // into bytes
  std::size_t size;
};

int one(pid_t tid, const void* local, std::uintptr_t remote, std::size_t size, bool write) noexcept {
  iovec l{const_cast<void*>(local), size};
  iovec r{reinterpret_cast<void*>(remote), size};
  ssize_t n = write ? ::process_vm_writev(tid, &l, 1, &r, 1, 0) : ::process_vm_readv(tid, &l, 1, &r, 1, 0);
  if (n < 0) return errno;
  return static_cast<std::size_t>(n) == size ? 0 : EFAULT;
}

}  // namespace

int write_remote(pid_t tid, std::uintptr_t address, std::span<const std::byte> bytes) noexcept {
  if (bytes.empty()) return 0;
  if (bytes.size() > max_remote_write) return E2BIG;
  if (address + bytes.size() < address) return EFAULT;
  std::byte old[max_remote_write] = {};
  if (int err = one(tid, old, address, bytes.size(), false); err != 0) return err;
  // Chunks at page boundaries, last chunk first.
  Chunk chunks[max_chunks];
  std::size_t count = 0;
  for (std::uintptr_t end = address + bytes.size(); end > address;) {
    std::uintptr_t start = (end - 1) & ~(std::uintptr_t{page_size} - 1);
    if (start < address) start = address;
    chunks[count++] = {start, start - address, end - start};
    end = start;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const Chunk& c = chunks[i];
    int err = one(tid, bytes.data() + c.offset, c.start, c.size, true);
    if (err == 0) continue;
    for (std::size_t j = 0; j < i; ++j)  // put back what was written
      (void)one(tid, old + chunks[j].offset, chunks[j].start, chunks[j].size, true);
    return err == ESRCH || err == EPERM ? err : EFAULT;
  }
  return 0;
}

}  // namespace synchmess
