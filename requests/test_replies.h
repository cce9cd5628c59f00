// test_replies.h - for the requests layer's unit tests only: a ReplySink
// that records answers, fakes the caller's context and fires interrupts,
// and a PollHandles that records what happens to poll handles.
//
// Contract (modelled on libfuse): make(id) hands out a Reply for fake
// request `id`; the id is live until answered and may be reused after.
// interrupt(id) runs the registered interrupt callback of live request
// `id` on the calling thread, or, when none is registered yet, marks the
// request so that the registration runs it at once; an interrupt of an
// id that is not live does nothing, and an answer forgets both.  Answering
// an id that is not live, or making a live id again, is counted in
// violations().  Waits are bounded (10 s) and return whether the condition
// held.
// Thread safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "requests/group_requests.h"
#include "requests/reply.h"

namespace synchmess::testing {

inline fuse_req_t fake_req(std::uintptr_t n) { return reinterpret_cast<fuse_req_t>(n); }
inline fuse_pollhandle* fake_ph(std::uintptr_t n) { return reinterpret_cast<fuse_pollhandle*>(n); }
inline constexpr std::chrono::seconds wait_limit{10};

class RecordingReplies final : public ReplySink {
 public:
  enum class Kind { error, data, written, ioctl, ioctl_retry, poll, open, entry, attr, none };
  struct Answer {
    fuse_req_t req;
    Kind kind;
    long value = 0;  // errno, byte count, ioctl result or revents
    std::vector<std::byte> bytes;
    fuse_file_info fi{};
  };

  Reply make(std::uintptr_t id) {
    std::lock_guard lock(mu_);
    if (!live_.insert(fake_req(id)).second) ++violations_;
    return Reply(fake_req(id), *this);
  }
  void set_context(const fuse_ctx& ctx) {
    std::lock_guard lock(mu_);
    ctx_ = ctx;
  }
  void interrupt(std::uintptr_t id) {
    fuse_interrupt_func_t func = nullptr;
    void* data = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!live_.contains(fake_req(id))) return;  // answered: the interrupt is for a request gone
      auto& s = interrupts_[fake_req(id)];
      s.interrupted = true;
      func = s.func;
      data = s.data;
    }
    if (func != nullptr) func(fake_req(id), data);
  }

  std::vector<Answer> answers() const {
    std::lock_guard lock(mu_);
    return answers_;
  }
  std::vector<Answer> answers_to(std::uintptr_t id) const {
    std::lock_guard lock(mu_);
    std::vector<Answer> out;
    if (auto it = by_req_.find(fake_req(id)); it != by_req_.end())
      for (std::size_t i : it->second) out.push_back(answers_[i]);
    return out;
  }
  // The only answer to `id` so far (fails the test if there are several).
  std::optional<Answer> answer_to(std::uintptr_t id) const {
    auto all = answers_to(id);
    if (all.size() != 1) return std::nullopt;
    return all.front();
  }
  bool live(std::uintptr_t id) const {
    std::lock_guard lock(mu_);
    return live_.contains(fake_req(id));
  }
  bool wait_answered(std::uintptr_t id) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, wait_limit, [&] { return !live_.contains(fake_req(id)); });
  }
  int violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }

  void error(fuse_req_t req, int err) noexcept override { add({req, Kind::error, err}); }
  void data(fuse_req_t req, std::span<const std::byte> bytes) noexcept override {
    add({req, Kind::data, static_cast<long>(bytes.size()), {bytes.begin(), bytes.end()}});
  }
  void written(fuse_req_t req, std::size_t count) noexcept override {
    add({req, Kind::written, static_cast<long>(count)});
  }
  void ioctl(fuse_req_t req, int result, std::span<const std::byte> out) noexcept override {
    add({req, Kind::ioctl, result, {out.begin(), out.end()}});
  }
  void ioctl_retry(fuse_req_t req, std::span<const iovec> in, std::span<const iovec> out) noexcept override {
    add({req, Kind::ioctl_retry, static_cast<long>(in.size() * 10 + out.size())});
  }
  void poll(fuse_req_t req, unsigned revents) noexcept override { add({req, Kind::poll, revents}); }
  void open(fuse_req_t req, const fuse_file_info& fi) noexcept override {
    Answer a{req, Kind::open};
    a.fi = fi;
    add(std::move(a));
  }
  void entry(fuse_req_t req, const fuse_entry_param&) noexcept override { add({req, Kind::entry}); }
  void attr(fuse_req_t req, const struct stat&, double) noexcept override { add({req, Kind::attr}); }
  void none(fuse_req_t req) noexcept override { add({req, Kind::none}); }
  const fuse_ctx* context(fuse_req_t req) noexcept override {
    std::lock_guard lock(mu_);
    if (!live_.contains(req)) ++violations_;
    return &ctx_;
  }
  void on_interrupt(fuse_req_t req, fuse_interrupt_func_t func, void* data) noexcept override {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      if (!live_.contains(req)) ++violations_;
      auto& s = interrupts_[req];
      s.func = func;
      s.data = data;
      now = s.interrupted;
    }
    if (now && func != nullptr) func(req, data);
  }
  bool interrupted(fuse_req_t req) noexcept override {
    std::lock_guard lock(mu_);
    if (!live_.contains(req)) ++violations_;
    auto it = interrupts_.find(req);
    return it != interrupts_.end() && it->second.interrupted;
  }

 private:
  struct InterruptState {
    fuse_interrupt_func_t func = nullptr;
    void* data = nullptr;
    bool interrupted = false;
  };
  void add(Answer a) {
    {
      std::lock_guard lock(mu_);
      if (live_.erase(a.req) == 0) ++violations_;
      interrupts_.erase(a.req);
      by_req_[a.req].push_back(answers_.size());
      answers_.push_back(std::move(a));
    }
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::set<fuse_req_t> live_;
  std::map<fuse_req_t, InterruptState> interrupts_;
  std::vector<Answer> answers_;
  std::map<fuse_req_t, std::vector<std::size_t>> by_req_;  // indices into answers_
  fuse_ctx ctx_{};
  int violations_ = 0;
};

class RecordingPollHandles final : public PollHandles {
 public:
  void notify(fuse_pollhandle* ph) noexcept override {
    std::lock_guard lock(mu_);
    if (!live_.contains(ph)) ++violations_;  // unknown or already destroyed
    notified_.push_back(ph);
  }
  void destroy(fuse_pollhandle* ph) noexcept override {
    std::lock_guard lock(mu_);
    if (live_.erase(ph) == 0) ++violations_;  // unknown or destroyed twice
    destroyed_.insert(ph);
  }
  // A handle the kernel gave with a poll request.
  fuse_pollhandle* make(std::uintptr_t n) {
    std::lock_guard lock(mu_);
    live_.insert(fake_ph(n));
    return fake_ph(n);
  }
  bool destroyed(std::uintptr_t n) const {
    std::lock_guard lock(mu_);
    return destroyed_.contains(fake_ph(n));
  }
  std::vector<fuse_pollhandle*> notified() const {
    std::lock_guard lock(mu_);
    return notified_;
  }
  std::size_t live() const {
    std::lock_guard lock(mu_);
    return live_.size();
  }
  int violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }

 private:
  mutable std::mutex mu_;
  std::set<fuse_pollhandle*> live_;
  std::set<fuse_pollhandle*> destroyed_;
  std::vector<fuse_pollhandle*> notified_;
  int violations_ = 0;
};

}  // namespace synchmess::testing
