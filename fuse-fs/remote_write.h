// remote_write.h - write bytes into another process's memory.
//
// Contract: write_remote(tid, address, bytes) copies all of bytes to
// address in thread tid's process with process_vm_writev, or nothing when
// the range's last page is unmapped (the range is split at page
// boundaries and written tail first).  Returns 0 or a positive errno
// (EPERM/ESRCH when the daemon may not write there, EFAULT for a bad range).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>

namespace synchmess {

int write_remote(pid_t tid, std::uintptr_t address, std::span<const std::byte> bytes) noexcept;

}  // namespace synchmess
