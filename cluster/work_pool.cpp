#include "cluster/work_pool.h"

namespace synchmess {

WorkPool::WorkPool(unsigned threads, std::size_t capacity) : capacity_(capacity) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { loop(i); });
}

WorkPool::~WorkPool() { stop(); }

bool WorkPool::post(Job job) {
  {
    std::lock_guard lock(mu_);
    if (stopped_ || jobs_.size() >= capacity_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void WorkPool::stop() {
  std::deque<Job> left;
  {
    std::lock_guard lock(mu_);
    if (stopped_ && threads_.empty()) return;
    stopped_ = true;
    left.swap(jobs_);
  }
  cv_.notify_all();
  for (auto& j : left)
    if (j.cancel) j.cancel();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  std::lock_guard lock(mu_);
  threads_.clear();
}

void WorkPool::loop(unsigned index) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopped
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.run(index);
  }
}

}  // namespace synchmess
