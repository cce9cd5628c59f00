// Reads and writes of the storm worker (worker_impl.h): every count from 0
// to huge, buffers valid, NULL, read-only or cut by an unmapped page, and
// the exact result the kernel's FUSE direct I/O and the daemon allow for
// them: FUSE pins the buffer page by page and sends only the part before
// the first page it cannot pin, so a cut write stores a shorter message and
// a cut read receives into the part that is there -- but a cut read that
// finds the queue empty returns the pinning's EFAULT, not 0
// (fs/fuse/file.c fuse_direct_io: "return res > 0 ? res : err").  The first
// request pins at most max_pages (32) pages: a cut beyond 64 KiB may lie
// past it, and then an empty queue reads 0.
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/fuzz/record.h"
#include "tests/fuzz/worker_impl.h"

namespace fuzz {
namespace {
constexpr std::size_t first_request_floor = 64 * 1024;
}  // namespace

bool kernel_address(const void* p) { return reinterpret_cast<std::uintptr_t>(p) >= (std::uintptr_t{1} << 47); }

std::size_t Worker::random_count() {
  std::size_t max = o_.max_message;
  switch (pick(18)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 2 + pick(14);
    case 3: return 16;
    case 4: return max - 1;
    case 5: return max;
    case 6: return max + 1;
    case 7: return 2 * max + pick(max);
    case 8: return 65536;
    case 9: return 65537;
    case 10: return 131072 + pick(8192);
    case 11: {
      static constexpr std::size_t huge[] = {std::size_t{1} << 31, std::size_t{1} << 40, std::size_t{1} << 63,
                                             ~std::size_t{0}};
      return huge[pick(std::size(huge))];
    }
    default: return 1 + pick(max);
  }
}

unsigned char* Worker::random_buffer(std::size_t count, std::string& what) {
  if (chance(4)) return arena_.pointer(rng_, std::min<std::size_t>(count, 4096), what);
  what = "valid";
  std::size_t room = count < arena_.big_size() ? arena_.big_size() - count : 4096;
  return arena_.big() + pick(std::min<std::size_t>(room, 8192) + 1);
}

void Worker::put_record(unsigned char* p, std::size_t len) {
  len = std::min(len, scratch_.size());
  if (len == 0) return;
  fill_record(scratch_.data(), len, static_cast<std::uint32_t>(rng_()));
  arena_.poke(p, scratch_.data(), len);
}

void Worker::check_message(const unsigned char* p, long got, std::size_t asked,
                           const std::function<std::string()>& what) {
  if (got <= 0) return;
  auto n = static_cast<std::size_t>(got);
  Validation v = validate(p, n, n < asked);  // shorter than asked: the whole message
  if (!v.ok) fail(s_, who(), fmt::format("{} returned a damaged message: {}", what(), v.why));
}

void Worker::do_write() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  std::size_t count = random_count();
  std::string what;
  unsigned char* p = random_buffer(count, what);
  std::size_t eff = arena_.readable_prefix(p, std::min(count, max_rw));
  put_record(p, eff);
  Expect e;
  if (!refuse_path(f, e)) {
    if (f.kind == Kind::master || f.acc == O_RDONLY) e.err(EBADF);
    else if (kernel_address(p)) e.err(EFAULT);  // access_ok, even for 0 bytes
    else if (count == 0) e.ok(0, 0);
    else {
      if (count > max_rw) e.err(EFAULT).err(EINVAL);  // access_ok or the clamp decides
      if (eff == 0) e.err(EFAULT);
      else if (eff > o_.max_message) e.err(EPERM);
      else e.ok(static_cast<long>(eff), static_cast<long>(eff)).err(EPERM);  // EPERM: storage full
    }
  }
  long r = ::write(f.fd, p, count);
  int err = errno;
  check(op_write, r, err, e, [&] {
    return fmt::format("write({}, {} {}, {}) [{} readable]", fd_text(f), what, static_cast<void*>(p), count, eff);
  });
  if (r > 0 && static_cast<std::size_t>(r) < count) s_.short_writes.fetch_add(1);
}

void Worker::do_read() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  std::size_t count = random_count();
  std::string what;
  unsigned char* p = random_buffer(count, what);
  std::size_t eff = arena_.writable_prefix(p, std::min(count, max_rw));
  Expect e;
  if (!refuse_path(f, e)) {
    if (f.acc == O_WRONLY) e.err(EBADF);
    else if (kernel_address(p)) e.err(EFAULT);
    else if (count == 0) e.ok(0, 0);
    else {
      if (count > max_rw) e.err(EFAULT).err(EINVAL);
      if (eff == 0) e.err(EFAULT);
      else if (f.kind == Kind::master) e.err(EPERM);
      else if (eff < std::min(count, max_rw) && eff < first_request_floor)
        e.ok(1, static_cast<long>(eff)).err(EFAULT);  // cut, and the queue may be empty
      else if (eff < std::min(count, max_rw)) e.ok(0, static_cast<long>(eff)).err(EFAULT);
      else e.ok(0, static_cast<long>(eff));
    }
  }
  long r = ::read(f.fd, p, count);
  int err = errno;
  auto text = [&] {
    return fmt::format("read({}, {} {}, {}) [{} writable]", fd_text(f), what, static_cast<void*>(p), count, eff);
  };
  if (check(op_read, r, err, e, text) && f.kind == Kind::group) check_message(p, r, eff, text);
}

namespace {
struct Iovs {
  std::vector<iovec> iov;
  std::size_t total = 0;   // sum of the lengths
  std::size_t eff = 0;     // bytes before the first inaccessible one
  bool kernel = false;     // a kernel address: import_iovec refuses the call
  std::string hostile;     // the one hostile base, if any
};
}  // namespace

// n iovecs laid out one after another in the big block from 8 KiB on (the
// first and last two pages stay free for a hostile base near a boundary),
// at most one hostile, so none overlap; eff counts accessible bytes in order.
static Iovs make_iovs(Arena& arena, std::mt19937_64& rng, std::size_t max_message, bool for_write,
                      const std::function<void(unsigned char*, std::size_t)>& fill) {
  Iovs v;
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  std::size_t n = pick(40) == 0 ? 0 : pick(40) == 0 ? 1025 : 1 + pick(8);
  v.iov.resize(n);
  std::size_t off = 8192 + pick(64);
  const std::size_t end = arena.big_size() - 8192;
  bool cut = false, hostile = false;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t len = n > 8 ? 0 : pick(4) == 0 ? 0 : pick(20) == 0 ? max_message + 1 : 1 + pick(2 * max_message / n + 16);
    unsigned char* base = nullptr;
    std::string what;
    if (!hostile && n <= 8 && pick(6) == 0) {
      base = arena.pointer(rng, len, what);
      hostile = what != "valid";
      if (hostile) v.hostile = fmt::format("iov[{}] {} {} len {}", i, what, static_cast<void*>(base), len);
    }
    if (!hostile || !v.hostile.starts_with(fmt::format("iov[{}] ", i))) {
      if (off + len > end) len = 0;
      base = arena.big() + off;
      off += len;
    }
    v.iov[i] = iovec{base, len};
    if (kernel_address(base)) v.kernel = true;
    std::size_t ok = for_write ? arena.readable_prefix(base, len) : arena.writable_prefix(base, len);
    if (for_write && ok) fill(base, ok);
    if (!cut) {
      v.eff += ok;
      cut = ok < len;
    }
    v.total += len;
  }
  return v;
}

void Worker::do_writev() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  Iovs v = make_iovs(arena_, rng_, o_.max_message, true,
                     [this](unsigned char* p, std::size_t len) { put_record(p, len); });
  Expect e;
  if (!refuse_path(f, e)) {
    if (f.kind == Kind::master || f.acc == O_RDONLY) e.err(EBADF);
    else if (v.iov.size() > 1024) e.err(EINVAL);
    else if (v.kernel) e.err(EFAULT);
    else if (v.total == 0) e.ok(0, 0);
    else if (v.eff == 0) e.err(EFAULT);
    else if (v.eff > o_.max_message) e.err(EPERM);
    else e.ok(static_cast<long>(v.eff), static_cast<long>(v.eff)).err(EPERM);
  }
  long r = ::writev(f.fd, v.iov.data(), static_cast<int>(v.iov.size()));
  int err = errno;
  check(op_writev, r, err, e, [&] {
    return fmt::format("writev({}, {} iovecs, {} bytes{}{}) [{} readable]", fd_text(f), v.iov.size(), v.total,
                       v.hostile.empty() ? "" : ", ", v.hostile, v.eff);
  });
  if (r > 0 && static_cast<std::size_t>(r) < v.total) s_.short_writes.fetch_add(1);
}

void Worker::do_readv() {
  Fd* a = any_fd();
  if (!a) return;
  Fd f = *a;
  Iovs v = make_iovs(arena_, rng_, o_.max_message, false, nullptr);
  Expect e;
  if (!refuse_path(f, e)) {
    if (f.acc == O_WRONLY) e.err(EBADF);
    else if (v.iov.size() > 1024) e.err(EINVAL);
    else if (v.kernel) e.err(EFAULT);
    else if (v.total == 0) e.ok(0, 0);
    else if (v.eff == 0) e.err(EFAULT);
    else if (f.kind == Kind::master) e.err(EPERM);
    else if (v.eff < v.total) e.ok(1, static_cast<long>(v.eff)).err(EFAULT);  // iovecs stay below 64 KiB
    else e.ok(0, static_cast<long>(v.eff));
  }
  long r = ::readv(f.fd, v.iov.data(), static_cast<int>(v.iov.size()));
  int err = errno;
  auto text = [&] {
    return fmt::format("readv({}, {} iovecs, {} bytes{}{}) [{} writable]", fd_text(f), v.iov.size(), v.total,
                       v.hostile.empty() ? "" : ", ", v.hostile, v.eff);
  };
  if (!check(op_readv, r, err, e, text) || r <= 0 || f.kind != Kind::group) return;
  std::size_t got = 0;  // gather what arrived, in order
  for (const iovec& io : v.iov) {
    std::size_t take = std::min(io.iov_len, static_cast<std::size_t>(r) - got);
    std::memcpy(scratch_.data() + got, io.iov_base, take);
    got += take;
    if (got == static_cast<std::size_t>(r)) break;
  }
  check_message(scratch_.data(), r, v.eff, text);
}

// A burst of tiny messages into one group, left for the other workers and
// the final drain to read: the daemon's memory per queued message must go
// back once they are read, however many were queued at the peak (the
// runner compares RSS after the drain with the baseline).
void Worker::do_hoard() {
  unsigned g = static_cast<unsigned>(1 + pick(o_.groups));
  std::string path = group_path(g);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  check(op_open_group, fd, errno, Expect().ok(0).err(ENOENT), [&] { return fmt::format("open({}, O_WRONLY)", path); });
  if (fd < 0) return;
  std::size_t k = 500 + pick(2500);
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t len = 1 + pick(15);
    fill_record(scratch_.data(), len, 0);
    long r = ::write(fd, scratch_.data(), len);
    int err = errno;
    check(op_write, r, err, Expect().ok(static_cast<long>(len), static_cast<long>(len)).err(EPERM),
          [&] { return fmt::format("write(group {} fd {}, {} bytes) in a burst", g, fd, len); });
    if (r < 0) break;
  }
  ::close(fd);
}

}  // namespace fuzz
