// group_requests.h - the group operations of both transports, in one place.
//
// Contract: each method answers its Reply exactly once, now or later, with
// the results of docs/abi.md:
//  - read: the oldest message, at most `size` bytes of it; the rest of the
//    message is consumed too.  0 bytes when the group is empty.
//  - write: the message whole, or EPERM (too big, group full).
//  - flush: publishes delayed messages (fsync on FUSE; the FLUSH ioctl).
//  - ioctl: `in` holds at least spec.in_size bytes (the transport fetched
//    them).  SLEEP is answered later: 0 by AWAKE, EINTR when the caller is
//    interrupted (signal, kill) or the daemon stops; an interrupted sleeper
//    is gone and AWAKE does not count it.  Master-only and unknown numbers
//    fail EPERM.
//  - poll: POLLIN when a message is readable; POLLOUT always (a write never
//    blocks).  A poller is notified when a message becomes readable.
// Thread safety: every method may run on any pool thread at once.  The
// interrupt callback only records and posts; the owner of the reply answers.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/group.h"
#include "core/ioctl_codec.h"
#include "daemon/fuse_api.h"
#include "daemon/reply.h"

namespace synchmess {

class GroupRequests final : public GroupListener {
 public:
  GroupRequests(boost::asio::io_context& io, unsigned max_groups);
  ~GroupRequests();
  GroupRequests(const GroupRequests&) = delete;
  GroupRequests& operator=(const GroupRequests&) = delete;

  void read(Group& g, Reply reply, std::size_t size);
  void write(Group& g, Reply reply, std::span<const std::byte> bytes);
  void flush(Group& g, Reply reply);
  void ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in);
  void poll(Group& g, Reply reply, fuse_pollhandle* ph);

  void on_readable(Group& g) noexcept override;
  // Drops every registered poll handle (pollers get no further wake-ups).
  void shutdown() noexcept;

 private:
  struct Sleeper {
    Group* group;
    Barrier::Ticket ticket;  // 0 until Group::sleep returned
    bool interrupted;
  };
  struct Pollers {
    std::mutex mu;
    std::vector<fuse_pollhandle*> handles;
  };

  void sleep(Group& g, Reply reply);
  static void on_interrupt(fuse_req_t req, void* self);
  void interrupted(fuse_req_t req);
  void notify_pollers(unsigned descriptor) noexcept;

  boost::asio::io_context& io_;
  std::mutex sleepers_mu_;
  std::unordered_map<fuse_req_t, Sleeper> sleepers_;
  std::vector<std::unique_ptr<Pollers>> pollers_;  // index: descriptor
  std::atomic<int> poll_handles_{0};               // registered in all groups
};

}  // namespace synchmess
