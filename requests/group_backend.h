// group_backend.h - the seam where a group's operations leave this host.
//
// Contract: GroupRequests hands the operations below to its backend, when it
// has one (synchmessd --cluster: cluster/cluster_groups.h), instead of the
// local core Group; everything else (open ids, poll handles, SLEEP and its
// interrupts) stays in GroupRequests.  Each method answers its Reply exactly
// once, now or later, from any thread, with the results of docs/abi.md
// ("Cluster groups" says where they differ).  `bytes` of write is borrowed
// for the call only.  readable() is a fast hint for poll (no blocking call):
// it may say true when nothing is readable (the poller reads 0), and says
// false only when no message became readable since a read found the group
// empty; when a message arrives the backend calls
// GroupListener::on_readable(g) of the GroupRequests so its pollers wake.
// Thread safety: every method may run on any thread at once.
#pragma once

#include <cstddef>
#include <span>

#include "core/group.h"
#include "requests/reply.h"

namespace synchmess {

class GroupBackend {
 public:
  // A file of g is being opened: answer reply.open(fi) once the backend
  // knows g (bound, its send delay and readability learnt) or gave up.
  virtual void open(Group& g, Reply reply, const fuse_file_info& fi) = 0;
  virtual void read(Group& g, Reply reply, std::size_t size) = 0;
  virtual void write(Group& g, Reply reply, std::span<const std::byte> bytes) = 0;
  virtual void flush(Group& g, Reply reply, bool as_ioctl) = 0;  // fsync (ok()) or the FLUSH ioctl (ioctl(0))
  virtual void set_send_delay(Group& g, Reply reply, unsigned ms) = 0;
  virtual void revoke(Group& g, Reply reply) = 0;
  virtual void awake(Group& g, Reply reply) = 0;
  virtual bool readable(Group& g) noexcept = 0;
  // IOCTL_SET_PARAMS with checked values (master_requests.h): applies them
  // (the Limits, and whatever the backend keeps of them) and answers.
  virtual void set_params(Reply reply, std::size_t max_message_size, std::size_t max_storage_size) = 0;

 protected:
  ~GroupBackend() = default;
};

}  // namespace synchmess
