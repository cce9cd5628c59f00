#include "fuse-fs/remote_write.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace synchmess {

TEST(RemoteWrite, WritesIntoAProcessAcrossAPageBoundary) {
  long page = sysconf(_SC_PAGESIZE);
  auto* mem = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  std::string text = "/dev/synch/synchmess12";
  char* target = mem + page - 5;  // straddles the boundary
  ASSERT_EQ(write_remote(getpid(), reinterpret_cast<std::uintptr_t>(target),
                         std::as_bytes(std::span(text.c_str(), text.size() + 1))),
            0);
  EXPECT_STREQ(target, text.c_str());
  munmap(mem, 2 * page);
}

TEST(RemoteWrite, UnmappedTailWritesNothing) {
  long page = sysconf(_SC_PAGESIZE);
  auto* mem = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  ASSERT_EQ(munmap(mem + page, page), 0);
  char* target = mem + page - 8;
  std::memset(target, 'x', 8);
  std::string text = "/dev/synch/synchmess12";
  EXPECT_EQ(write_remote(getpid(), reinterpret_cast<std::uintptr_t>(target),
                         std::as_bytes(std::span(text.c_str(), text.size() + 1))),
            EFAULT);
  EXPECT_EQ(std::string(target, 8), "xxxxxxxx");  // nothing written
  munmap(mem, page);
}

TEST(RemoteWrite, ReadOnlyHeadRollsBackTheWrittenTail) {
  // Tail first: the tail page takes the write, the read-only head refuses
  // it, and the tail must be put back as it was.
  long page = sysconf(_SC_PAGESIZE);
  auto* mem = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  std::memset(mem, 'x', 2 * page);
  ASSERT_EQ(mprotect(mem, page, PROT_READ), 0);
  char* target = mem + page - 6;
  std::string text = "/dev/synch/synchmess12";
  EXPECT_EQ(write_remote(getpid(), reinterpret_cast<std::uintptr_t>(target),
                         std::as_bytes(std::span(text.c_str(), text.size() + 1))),
            EFAULT);
  EXPECT_EQ(std::string(mem + page, text.size() + 1 - 6), std::string(text.size() + 1 - 6, 'x'));
  munmap(mem, 2 * page);
}

}  // namespace synchmess
