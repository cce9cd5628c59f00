#include "requests/group_requests.h"

#include <poll.h>

#include "synchmess_fast.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <boost/asio/post.hpp>

namespace synchmess {

constinit LibfusePollHandles libfuse_poll_handles;

void LibfusePollHandles::notify(fuse_pollhandle* ph) noexcept { fuse_lowlevel_notify_poll(ph); }
void LibfusePollHandles::destroy(fuse_pollhandle* ph) noexcept { fuse_pollhandle_destroy(ph); }

GroupRequests::GroupRequests(boost::asio::io_context& io, unsigned max_groups, PollHandles& poll_handles)
    : io_(io),
      max_groups_(max_groups),
      handles_(poll_handles),
      pollers_(std::make_unique<std::atomic<Pollers*>[]>(max_groups + 1)),
      parked_by_group_(max_groups + 1, 0),
      parked_timer_(io) {
  parked_.reserve(max_parked);  // parking never reallocates
  for (unsigned d = 0; d <= max_groups_; ++d) pollers_[d].store(nullptr, std::memory_order_relaxed);
}

GroupRequests::~GroupRequests() {
  shutdown();
  for (unsigned d = 0; d <= max_groups_; ++d) delete pollers_[d].load();
}

void GroupRequests::open(Group& g, Reply reply, fuse_file_info& fi) {
  g.opened();  // before the answer, so that its release cannot come first
  fi.fh = next_file_.fetch_add(1, std::memory_order_relaxed);
  fi.direct_io = 1;
  fi.nonseekable = 1;
  if (backend_ != nullptr) return backend_->open(g, std::move(reply), fi);
  reply.open(fi);
}

void GroupRequests::release(Group& g, Reply reply, const fuse_file_info& fi) {
  fuse_pollhandle* ph = nullptr;
  if (Pollers* p = pollers_[g.descriptor()].load(std::memory_order_acquire)) {
    std::lock_guard lock(p->mu);
    if (auto it = p->by_file.find(fi.fh); it != p->by_file.end()) {
      ph = it->second;
      p->by_file.erase(it);
      poll_handles_.fetch_sub(1, std::memory_order_seq_cst);
      if (p->by_file.empty()) g.set_pollers(false);
    }
  }
  if (ph != nullptr) handles_.destroy(ph);
  g.closed();
  reply.ok();
}

void GroupRequests::read(Group& g, Reply reply, std::size_t size) {
  if (backend_ != nullptr) return backend_->read(g, std::move(reply), size);
  // Answered straight from the group's segment: no copy, and a message
  // taken from the ring is always answered (as before, when it was popped).
  bool taken = g.receive_with([&](std::span<const std::byte> b) { reply.data(b.first(std::min(size, b.size()))); });
  if (!taken) reply.data({});
}

void GroupRequests::write(Group& g, Reply reply, std::span<const std::byte> bytes) {
  if (backend_ != nullptr) return backend_->write(g, std::move(reply), bytes);
  auto sent = g.send(bytes);
  if (sent)
    reply.written(*sent);
  else if (sent.error() == Errc::out_of_memory)
    park(g, std::move(reply), bytes);
  else
    reply.fail(sent.error());
}

void GroupRequests::park(Group& g, Reply reply, std::span<const std::byte> bytes) {
  bool post = false;
  {
    std::lock_guard lock(parked_mu_);
    const unsigned d = g.descriptor();
    if (!parked_stopped_ && d < parked_by_group_.size() && parked_by_group_[d] < max_parked_per_group &&
        parked_.size() < max_parked) {
      try {
        std::vector<std::byte> copy(bytes.begin(), bytes.end());
        parked_.push_back({&g, std::move(reply), std::move(copy), std::chrono::steady_clock::now() + park_limit});
        ++parked_by_group_[d];
        post = !parked_armed_;
        parked_armed_ = true;
      } catch (const std::bad_alloc&) {  // the copy: the reply was not moved
      }
    }
  }
  if (reply) {  // not parked: over a cap, stopping, or no memory
    reply.fail(Errc::out_of_memory);
    return;
  }
  if (post) boost::asio::post(io_, [this] { arm_parked(); });
}

void GroupRequests::arm_parked() {
  parked_timer_.expires_after(park_retry);
  parked_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec != boost::asio::error::operation_aborted) retry_parked();
  });
}

// One try per parked write, oldest first, none while its ring's newest
// reservation lacks its word0 (Group::try_send): a few loads per parked
// write, at most max_parked, every park_retry.  An interrupted caller is
// answered EINTR first, within park_retry (polled, not a callback: the
// callback would run under libfuse's request lock and need parked_mu_,
// which this loop holds while it answers).  Compacts in place (no
// allocation on the service loop); answers under the lock (a reply is one
// non-blocking write to the device).
void GroupRequests::retry_parked() {
  std::lock_guard lock(parked_mu_);
  const auto now = std::chrono::steady_clock::now();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < parked_.size(); ++i) {
    ParkedWrite& p = parked_[i];
    if (p.reply.interrupted()) {  // a signal or a kill: nothing was written
      --parked_by_group_[p.group->descriptor()];
      p.reply.fail(Errc::interrupted);
      continue;
    }
    Result<std::size_t> r = p.group->try_send(p.bytes);
    if (!r && r.error() == Errc::out_of_memory && now < p.deadline) {
      if (kept != i) parked_[kept] = std::move(p);
      ++kept;
      continue;
    }
    --parked_by_group_[p.group->descriptor()];
    if (r)
      p.reply.written(*r);
    else
      p.reply.fail(r.error());
  }
  parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(kept), parked_.end());
  parked_armed_ = !parked_.empty();
  if (parked_armed_) arm_parked();
}

std::size_t GroupRequests::parked_writes() const {
  std::lock_guard lock(parked_mu_);
  return parked_.size();
}

void GroupRequests::flush(Group& g, Reply reply) {
  if (backend_ != nullptr) return backend_->flush(g, std::move(reply), false);
  g.flush_delayed();
  reply.ok();
}

void GroupRequests::ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in) {
  if (backend_ != nullptr && spec.op != IoctlOp::sleep) return backend_ioctl(g, std::move(reply), spec, in);
  switch (spec.op) {
    case IoctlOp::sleep:
      sleep(g, std::move(reply));
      return;
    case IoctlOp::awake:
      reply.ioctl(static_cast<int>(g.awake()));
      return;
    case IoctlOp::set_send_delay: {
      if (in.size() < sizeof(unsigned)) {
        reply.fail(Errc::bad_address);
        return;
      }
      unsigned ms = 0;
      std::memcpy(&ms, in.data(), sizeof ms);
      auto r = g.set_send_delay(ms);
      if (r)
        reply.ioctl(0);
      else
        reply.fail(r.error());
      return;
    }
    case IoctlOp::revoke:
      g.revoke_delayed();
      reply.ioctl(0);
      return;
    case IoctlOp::flush:
      g.flush_delayed();
      reply.ioctl(0);
      return;
    case IoctlOp::fast_ticket:
      fast_ticket(g, std::move(reply));
      return;
    case IoctlOp::fast_kick:
      notify_pollers(g);
      reply.ioctl(0);
      return;
    default:
      reply.fail(Errc::unknown_request);
      return;
  }
}

void GroupRequests::backend_ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in) {
  switch (spec.op) {
    case IoctlOp::awake: return backend_->awake(g, std::move(reply));
    case IoctlOp::revoke: return backend_->revoke(g, std::move(reply));
    case IoctlOp::flush: return backend_->flush(g, std::move(reply), true);
    case IoctlOp::fast_ticket: return reply.fail(Errc::fast_disabled);  // the queue is the cluster's
    case IoctlOp::fast_kick: return reply.ioctl(0);
    case IoctlOp::set_send_delay: {
      if (in.size() < sizeof(unsigned)) return reply.fail(Errc::bad_address);
      unsigned ms = 0;
      std::memcpy(&ms, in.data(), sizeof ms);
      return backend_->set_send_delay(g, std::move(reply), ms);
    }
    default: return reply.fail(Errc::unknown_request);
  }
}

void GroupRequests::fast_ticket(Group& g, Reply reply) {
  if (fast_tickets_ == nullptr) return reply.fail(Errc::fast_disabled);
  const fuse_ctx* ctx = reply.context();
  if (ctx == nullptr) return reply.fail(Errc::not_permitted);
  auto seg = g.fast_segment();
  if (!seg) return reply.fail(seg.error());
  auto token = fast_tickets_->issue(ctx->uid, g.descriptor(), FastTickets::Clock::now());
  if (!token) return reply.fail(token.error());
  synchmess_fast_ticket t{};
  t.token = *token;
  t.segment_bytes = seg->bytes;
  t.generation = seg->generation;
  t.group = g.descriptor();
  t.version = SYNCHMESS_FAST_VERSION;
  std::memcpy(t.socket_path, fast_socket_.data(), std::min(fast_socket_.size(), sizeof t.socket_path - 1));
  reply.ioctl(0, std::as_bytes(std::span(&t, 1)));
}

// Order matters: the call is in the table and the interrupt callback is
// registered before the barrier can complete it, so a completion never
// races with registration on a freed request.  After Group::sleep, only
// our own SleepCall is touched: the table's entry for this request may
// already be gone (completed), and the request's address may already
// belong to another SLEEP.
void GroupRequests::sleep(Group& g, Reply reply) {
  fuse_req_t req = reply.get();
  auto call = std::make_shared<SleepCall>();
  call->group = &g;
  {
    std::lock_guard lock(sleepers_mu_);
    sleepers_[req] = call;
  }
  reply.on_interrupt(&GroupRequests::on_interrupt, this);
  Barrier::Ticket ticket = g.sleep([this, call, r = std::move(reply)](Result<void> res) mutable {
    {
      std::lock_guard lock(sleepers_mu_);
      call->done = true;
      auto it = sleepers_.find(r.get());
      if (it != sleepers_.end() && it->second == call) sleepers_.erase(it);
    }
    if (res)
      r.ioctl(0);
    else
      r.fail(res.error());
  });
  if (sleep_window_hook_) sleep_window_hook_();
  bool cancel = false;
  {
    std::lock_guard lock(sleepers_mu_);
    if (call->done) return;
    call->ticket = ticket;
    cancel = call->interrupted;
  }
  if (cancel) g.cancel_sleep(ticket, Errc::interrupted);
}

void GroupRequests::on_interrupt(fuse_req_t req, void* self) {
  static_cast<GroupRequests*>(self)->interrupted(req);
}

// Runs under libfuse's request lock: record, post, return.
void GroupRequests::interrupted(fuse_req_t req) {
  std::lock_guard lock(sleepers_mu_);
  auto it = sleepers_.find(req);
  if (it == sleepers_.end()) return;
  SleepCall& call = *it->second;
  if (call.done) return;
  if (call.ticket == 0) {
    call.interrupted = true;  // sleep() cancels once it has the ticket
    return;
  }
  // Tickets are never reused: a cancel that arrives after the sleeper was
  // completed finds nothing and does nothing.
  boost::asio::post(io_, [g = call.group, t = call.ticket] { g->cancel_sleep(t, Errc::interrupted); });
}

GroupRequests::Pollers& GroupRequests::pollers(unsigned descriptor) {
  if (Pollers* p = pollers_[descriptor].load(std::memory_order_acquire)) return *p;
  std::lock_guard lock(pollers_mu_);
  Pollers* p = pollers_[descriptor].load(std::memory_order_acquire);
  if (p == nullptr) {
    p = new Pollers;
    pollers_[descriptor].store(p, std::memory_order_release);
  }
  return *p;
}

void GroupRequests::poll(Group& g, Reply reply, const fuse_file_info& fi, fuse_pollhandle* ph) {
  const unsigned writable = POLLOUT | POLLWRNORM;
  const unsigned readable = POLLIN | POLLRDNORM;
  auto has_message = [&] { return backend_ != nullptr ? backend_->readable(g) : g.readable(); };
  if (has_message() || ph == nullptr) {
    if (ph != nullptr) handles_.destroy(ph);
    reply.poll(writable | (has_message() ? readable : 0));
    return;
  }
  Pollers& p = pollers(g.descriptor());
  fuse_pollhandle* replaced = nullptr;
  {
    std::lock_guard lock(p.mu);
    auto [it, inserted] = p.by_file.try_emplace(fi.fh, ph);
    if (inserted) {
      poll_handles_.fetch_add(1, std::memory_order_seq_cst);
      // Fast-path writers read the flag after they commit and then ask
      // for a notification (FAST_KICK); set before the re-check below.
      g.set_pollers(true);
    } else {
      replaced = it->second;
      it->second = ph;
    }
  }
  if (replaced != nullptr) handles_.destroy(replaced);
  // A message published between the check above and the registration
  // (or the pollers flag) would have found no handle: look again now that
  // the handle is visible.
  bool now = has_message();
  reply.poll(writable | (now ? readable : 0));
  if (now) notify_pollers(g);
}

void GroupRequests::on_readable(Group& g) noexcept {
  if (poll_handles_.load(std::memory_order_seq_cst) == 0) return;
  notify_pollers(g);
}

void GroupRequests::notify_pollers(Group& g) noexcept {
  Pollers* p = pollers_[g.descriptor()].load(std::memory_order_acquire);
  if (p == nullptr) return;
  std::unordered_map<std::uint64_t, fuse_pollhandle*> handles;
  {
    std::lock_guard lock(p->mu);
    if (p->by_file.empty()) return;
    handles.swap(p->by_file);
    poll_handles_.fetch_sub(static_cast<long>(handles.size()), std::memory_order_seq_cst);
    g.set_pollers(false);
  }
  for (auto [fh, ph] : handles) {
    handles_.notify(ph);
    handles_.destroy(ph);
  }
}

void GroupRequests::shutdown() noexcept {
  std::vector<ParkedWrite> parked;
  {
    std::lock_guard lock(parked_mu_);
    parked_stopped_ = true;
    parked.swap(parked_);
    std::fill(parked_by_group_.begin(), parked_by_group_.end(), 0u);
  }
  for (auto& p : parked) p.reply.fail(Errc::out_of_memory);
  for (unsigned d = 0; d <= max_groups_; ++d) {
    Pollers* p = pollers_[d].load(std::memory_order_acquire);
    if (p == nullptr) continue;
    std::unordered_map<std::uint64_t, fuse_pollhandle*> handles;
    {
      std::lock_guard lock(p->mu);
      handles.swap(p->by_file);
      poll_handles_.fetch_sub(static_cast<long>(handles.size()));
    }
    for (auto [fh, ph] : handles) handles_.destroy(ph);
  }
}

}  // namespace synchmess
