// remote_write.h - write bytes into another process's memory, all or nothing.
//
// Contract: write_remote(tid, address, bytes) leaves either all of bytes at
// address in thread tid's process, or the range as it was.  It reads the
// range's old bytes first (EFAULT if any of it is unreadable), writes it
// page by page, tail first, and when a page refuses the write (read-only,
// unmapped, a fault that fails) it puts the old bytes back on the pages it
// already wrote and returns EFAULT.  Returns 0 or a positive errno
// (EPERM/ESRCH when the daemon may not write there, EFAULT for a bad range,
// E2BIG above max_remote_write bytes).  The range can change under it only
// if the target writes its own memory at the same time.
// It allocates nothing and makes only system calls, so a child forked from
// a multi-threaded process may call it (remote_writer.h does).
// Thread safety: reentrant.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace synchmess {

inline constexpr std::size_t max_remote_write = 512;

int write_remote(pid_t tid, std::uintptr_t address, std::span<const std::byte> bytes) noexcept;

}  // namespace synchmess
