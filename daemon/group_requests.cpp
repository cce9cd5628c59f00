#include "daemon/group_requests.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

namespace synchmess {

GroupRequests::GroupRequests(boost::asio::io_context& io, unsigned max_groups) : io_(io) {
  pollers_.resize(static_cast<std::size_t>(max_groups) + 1);
  for (auto& p : pollers_) p = std::make_unique<Pollers>();
}

GroupRequests::~GroupRequests() { shutdown(); }

void GroupRequests::read(Group& g, Reply reply, std::size_t size) {
  MessagePtr m = g.receive();
  if (!m) {
    reply.data({});
    return;
  }
  reply.data(m->bytes().first(std::min(size, m->size())));
}

void GroupRequests::write(Group& g, Reply reply, std::span<const std::byte> bytes) {
  auto sent = g.send(bytes);
  if (sent)
    reply.written(*sent);
  else
    reply.fail(sent.error());
}

void GroupRequests::flush(Group& g, Reply reply) {
  g.flush_delayed();
  reply.ok();
}

void GroupRequests::ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in) {
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
    default:
      reply.fail(Errc::unknown_request);
      return;
  }
}

// Order matters: the sleeper is in the table and the interrupt callback is
// registered before the barrier can complete it, so a completion never
// races with registration on a freed request.
void GroupRequests::sleep(Group& g, Reply reply) {
  fuse_req_t req = reply.get();
  {
    std::lock_guard lock(sleepers_mu_);
    sleepers_[req] = Sleeper{&g, 0, false};
  }
  fuse_req_interrupt_func(req, &GroupRequests::on_interrupt, this);
  Barrier::Ticket ticket = g.sleep([this, r = std::move(reply)](Result<void> res) mutable {
    {
      std::lock_guard lock(sleepers_mu_);
      sleepers_.erase(r.get());
    }
    if (res)
      r.ioctl(0);
    else
      r.fail(res.error());
  });
  bool cancel = false;
  {
    std::lock_guard lock(sleepers_mu_);
    auto it = sleepers_.find(req);
    if (it == sleepers_.end()) return;  // already completed
    it->second.ticket = ticket;
    cancel = it->second.interrupted;
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
  if (it->second.ticket == 0) {
    it->second.interrupted = true;  // sleep() cancels once it has the ticket
    return;
  }
  Group* g = it->second.group;
  Barrier::Ticket t = it->second.ticket;
  boost::asio::post(io_, [g, t] { g->cancel_sleep(t, Errc::interrupted); });
}

void GroupRequests::poll(Group& g, Reply reply, fuse_pollhandle* ph) {
  const unsigned writable = POLLOUT | POLLWRNORM;
  const unsigned readable = POLLIN | POLLRDNORM;
  if (g.readable() || ph == nullptr) {
    if (ph != nullptr) fuse_pollhandle_destroy(ph);
    reply.poll(writable | (g.readable() ? readable : 0));
    return;
  }
  Pollers& p = *pollers_.at(g.descriptor());
  {
    std::lock_guard lock(p.mu);
    p.handles.push_back(ph);
    poll_handles_.fetch_add(1, std::memory_order_seq_cst);
  }
  // A message published between the check above and the registration
  // would have found no handle: look again now that the handle is visible.
  bool now = g.readable();
  reply.poll(writable | (now ? readable : 0));
  if (now) notify_pollers(g.descriptor());
}

void GroupRequests::on_readable(Group& g) noexcept {
  if (poll_handles_.load(std::memory_order_seq_cst) == 0) return;
  notify_pollers(g.descriptor());
}

void GroupRequests::notify_pollers(unsigned descriptor) noexcept {
  std::vector<fuse_pollhandle*> handles;
  {
    Pollers& p = *pollers_[descriptor];
    std::lock_guard lock(p.mu);
    handles.swap(p.handles);
    poll_handles_.fetch_sub(static_cast<int>(handles.size()), std::memory_order_seq_cst);
  }
  for (fuse_pollhandle* ph : handles) {
    fuse_lowlevel_notify_poll(ph);
    fuse_pollhandle_destroy(ph);
  }
}

void GroupRequests::shutdown() noexcept {
  for (std::size_t d = 0; d < pollers_.size(); ++d) {
    std::vector<fuse_pollhandle*> handles;
    {
      std::lock_guard lock(pollers_[d]->mu);
      handles.swap(pollers_[d]->handles);
      poll_handles_.fetch_sub(static_cast<int>(handles.size()));
    }
    for (fuse_pollhandle* ph : handles) fuse_pollhandle_destroy(ph);
  }
}

}  // namespace synchmess
