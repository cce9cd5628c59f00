// memory_trimmer.h - gives freed message memory back to the system.
//
// Why: glibc keeps freed heap memory for reuse, so a daemon whose groups
// were filled and drained would keep its peak RSS for ever.  Every
// `period` the trimmer asks malloc how much free memory its arenas hold
// (mallinfo2); when that grew by at least `threshold` since the last trim,
// it calls malloc_trim(0), which returns the free pages of every arena.
// Queue nodes are not heap memory (node_pool.h) and stay, by design, for
// reuse.
// Thread safety: start/stop from any thread; the timer runs on the
// io_context.  Destroy after stop() and after the io_context stopped.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>


namespace synchmess {

class MemoryTrimmer {
 public:
  explicit MemoryTrimmer(boost::asio::io_context& io,
                         std::chrono::milliseconds period = std::chrono::seconds(5),
                         std::size_t threshold = 1024 * 1024);
  void start();
  void stop();
  // Trims now if enough free memory piled up; returns whether it trimmed.
  bool check();

 private:
  void arm();

  const std::chrono::milliseconds period_;
  const std::size_t threshold_;
  std::mutex mu_;
  boost::asio::steady_timer timer_;
  std::size_t free_after_trim_ = 0;
  bool stopped_ = false;
};

}  // namespace synchmess
