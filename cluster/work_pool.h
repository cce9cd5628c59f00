// work_pool.h - a few threads that run the cluster's blocking NATS calls,
// so that no thread of the daemon's request pool ever waits on the network.
//
// Contract: post(job) queues job and returns at once; it runs once on one
// of the pool's threads, with that thread's index (0..threads-1, for
// per-thread NATS subscriptions).  post() refuses (false, the job is
// destroyed unrun) when `capacity` jobs already wait or after stop(); a
// refused job's owner answers its client itself.  stop() runs the queued
// jobs' `cancel` instead of the job and joins the threads (a running job
// finishes first: every NATS call in a job has a timeout).
// Written by hand because a bounded queue with a refusal is a few lines, and
// Asio's thread_pool cannot bound its queue.
// Thread safety: post and stop may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace synchmess {

class WorkPool {
 public:
  struct Job {
    std::move_only_function<void(unsigned thread)> run;
    std::move_only_function<void()> cancel;  // may be empty
  };

  WorkPool(unsigned threads, std::size_t capacity);
  ~WorkPool();  // stop()
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  bool post(Job job);
  void stop();
  unsigned threads() const noexcept { return static_cast<unsigned>(threads_.size()); }

 private:
  void loop(unsigned index);

  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace synchmess
