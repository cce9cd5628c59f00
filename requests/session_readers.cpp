#include "requests/session_readers.h"

#include <fcntl.h>
#include <linux/fuse.h>  // struct fuse_in_header (uapi): libfuse does not install its copy
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "requests/log.h"

namespace synchmess {

namespace {
// A request header plus the largest write (the kernel refuses smaller
// read buffers once INIT set max_write).
constexpr std::size_t buffer_size = session_max_write + 4096;
constexpr std::size_t request_header_size = sizeof(struct fuse_in_header);
// How often stop() repeats the signal to a reader that has not returned
// (the signal may land just before the reader enters read()).
constexpr auto resignal_interval = std::chrono::milliseconds(2);

extern "C" void on_wake_signal(int) {}

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A bare futex: std::atomic::wait (libstdc++ 12) spins and yields before
// sleeping, which costs a parked reader CPU that the busy ones need.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen) noexcept {
  (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

bool install_wake_handler() {
  static const bool installed = [] {
    struct sigaction sa{};
    sa.sa_handler = on_wake_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
    return ::sigaction(SessionReaders::wake_signal(), &sa, nullptr) == 0;
  }();
  return installed;
}
}  // namespace

int SessionReaders::wake_signal() noexcept { return SIGRTMIN + 2; }

SessionReaders::SessionReaders(fuse_session* session, std::string name, unsigned max_threads,
                               std::function<void()> on_closed)
    : SessionReaders(
          fuse_session_fd(session), std::move(name), max_threads,
          process_with(session),
          std::move(on_closed)) {}

SessionReaders::SessionReaders(int fd, std::string name, unsigned max_threads, Process process,
                               std::function<void()> on_closed)
    : fd_(fd), name_(std::move(name)), max_threads_(max_threads == 0 ? 1 : max_threads), process_(std::move(process)),
      on_closed_(std::move(on_closed)) {}

SessionReaders::~SessionReaders() { stop(); }

bool SessionReaders::start() {
  if (!install_wake_handler()) {
    log::error("{}: cannot install the readers' wake-up signal: {}", name_, std::strerror(errno));
    return false;
  }
  int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) != 0 && ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) < 0)) {
    log::error("{}: cannot make the session fd blocking: {}", name_, std::strerror(errno));
    return false;
  }
  std::lock_guard lock(mu_);
  for (unsigned i = 0; i < std::min(park_above, max_threads_); ++i)
    if (!spawn()) break;  // serve with the readers that started
  return !readers_.empty();
}

bool SessionReaders::spawn() {
  auto reader = std::make_unique<Reader>();
  Reader& r = *reader;
  try {
    r.thread = std::thread([this, &r] { run(r); });
  } catch (const std::system_error& e) {
    log::limited_warn("{}: cannot start a reader thread: {}", name_, e.what());
    return false;
  }
  readers_.push_back(std::move(reader));
  started_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// Called by a reader that just left nobody in read(): a parked reader
// takes its place, or a new one while the pool may grow.
void SessionReaders::add_reader() {
  emptied_ns_.store(now_ns(), std::memory_order_relaxed);
  if (parked_.load(std::memory_order_seq_cst) > 0) {
    wake_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(wake_, 1);
    return;
  }
  if (started_.load(std::memory_order_relaxed) >= max_threads_) return;
  std::lock_guard lock(mu_);
  if (stopping_.load(std::memory_order_seq_cst) || readers_.size() >= max_threads_) return;
  (void)spawn();
}

// A hint (relaxed): a reader that stays in read() one time too many is
// merely one more reader the kernel can wake.
bool SessionReaders::may_park() const noexcept {
  return now_ns() - emptied_ns_.load(std::memory_order_relaxed) >= park_after_ns;
}

// Registered as parked before looking at in_read_ again, so a reader that
// empties read() either sees us (and wakes us) or we see it and do not wait.
void SessionReaders::park() {
  std::uint32_t seen = wake_.load(std::memory_order_seq_cst);
  parked_.fetch_add(1, std::memory_order_seq_cst);
  if (!stopping_.load(std::memory_order_seq_cst) && !closed_.load(std::memory_order_seq_cst) &&
      in_read_.load(std::memory_order_seq_cst) >= park_above)
    futex_wait(wake_, seen);
  parked_.fetch_sub(1, std::memory_order_seq_cst);
}

void SessionReaders::stop() {
  stopping_.store(true, std::memory_order_seq_cst);
  wake_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(wake_, INT32_MAX);
  std::vector<std::unique_ptr<Reader>> readers;
  {
    std::lock_guard lock(mu_);  // no reader is started after this
    readers.swap(readers_);
  }
  for (auto& r : readers) {
    if (!r->thread.joinable()) continue;
    while (!r->done.load(std::memory_order_acquire)) {
      ::pthread_kill(r->thread.native_handle(), wake_signal());
      std::this_thread::sleep_for(resignal_interval);
    }
    r->thread.join();
  }
}

void SessionReaders::run(Reader& self) {
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal());
  ::pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
  auto buf = std::make_unique<std::byte[]>(buffer_size);
  while (!stopping_.load(std::memory_order_seq_cst) && !closed_.load(std::memory_order_acquire)) {
    if (in_read_.load(std::memory_order_seq_cst) >= park_above && may_park()) {
      park();
      continue;
    }
    in_read_.fetch_add(1, std::memory_order_seq_cst);
    ssize_t n = ::read(fd_, buf.get(), buffer_size);
    bool emptied = in_read_.fetch_sub(1, std::memory_order_seq_cst) == 1;
    if (n < 0) {
      int err = errno;
      if (err == EINTR || err == EAGAIN || err == ENOENT) continue;
      if (err != ENODEV) log::warn("{}: session read failed: {}", name_, std::strerror(err));
      closed();
      break;
    }
    if (static_cast<std::size_t>(n) < request_header_size) {
      log::error("{}: short read of {} bytes from the kernel", name_, n);
      closed();
      break;
    }
    if (emptied) add_reader();
    process_(buf.get(), static_cast<std::size_t>(n));
  }
  self.done.store(true, std::memory_order_release);
}

void SessionReaders::closed() {
  if (closed_.exchange(true, std::memory_order_seq_cst)) return;
  wake_.fetch_add(1, std::memory_order_seq_cst);  // parked readers see the end and return
  futex_wake(wake_, INT32_MAX);
  if (on_closed_) on_closed_();
}

}  // namespace synchmess
