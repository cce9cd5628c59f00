#include "fuse-fs/remote_write.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace synchmess {

int write_remote(pid_t tid, std::uintptr_t address, std::span<const std::byte> bytes) noexcept {
  if (bytes.empty()) return 0;
  const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Chunks at page boundaries, last chunk first: a fault on the tail page
  // stops the call before anything is written.
  std::vector<iovec> local, remote;
  std::uintptr_t end = address + bytes.size();
  while (end > address) {
    std::uintptr_t start = std::max(address, (end - 1) & ~(page - 1));
    auto offset = start - address;
    local.push_back({const_cast<std::byte*>(bytes.data()) + offset, end - start});
    remote.push_back({reinterpret_cast<void*>(start), end - start});
    end = start;
  }
  ssize_t n = ::process_vm_writev(tid, local.data(), local.size(), remote.data(), remote.size(), 0);
  if (n < 0) return errno;
  if (static_cast<std::size_t>(n) != bytes.size()) return EFAULT;
  return 0;
}

}  // namespace synchmess
