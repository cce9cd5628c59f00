#include "requests/session_readers.h"

#include <fcntl.h>
#include <linux/fuse.h>  // struct fuse_in_header (uapi): libfuse does not install its copy
#include <pthread.h>
#include <signal.h>
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

SessionReaders::SessionReaders(fuse_session* session, std::string name, unsigned threads,
                               std::function<void()> on_closed)
    : SessionReaders(
          fuse_session_fd(session), std::move(name), threads,
          process_with(session),
          std::move(on_closed)) {}

SessionReaders::SessionReaders(int fd, std::string name, unsigned threads, Process process,
                               std::function<void()> on_closed)
    : fd_(fd), name_(std::move(name)), threads_(threads == 0 ? 1 : threads), process_(std::move(process)),
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
  for (unsigned i = 0; i < threads_; ++i) {
    auto reader = std::make_unique<Reader>();
    Reader& r = *reader;
    try {
      r.thread = std::thread([this, &r] { run(r); });
    } catch (const std::system_error& e) {
      log::error("{}: cannot start a reader thread: {}", name_, e.what());
      if (readers_.empty()) return false;
      break;  // serve with the readers that started
    }
    readers_.push_back(std::move(reader));
  }
  return true;
}

void SessionReaders::stop() {
  stopping_.store(true, std::memory_order_seq_cst);
  for (auto& r : readers_) {
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
    ssize_t n = ::read(fd_, buf.get(), buffer_size);
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
    process_(buf.get(), static_cast<std::size_t>(n));
  }
  self.done.store(true, std::memory_order_release);
}

void SessionReaders::closed() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  if (on_closed_) on_closed_();
}

}  // namespace synchmess
