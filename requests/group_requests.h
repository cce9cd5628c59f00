// group_requests.h - the group operations of both transports, in one place.
//
// Contract: each method answers its Reply exactly once, now or later, with
// the results of the ABI (docs/abi.md):
//  - open: gives the open file an id of its own (fi.fh) and direct I/O;
//    release forgets the file (its poll handle is destroyed).
//  - read: the oldest message, at most `size` bytes of it; the rest of the
//    message is consumed too.  0 bytes when the group is empty.
//  - write: the message whole, or EPERM (too big, group full).  A write
//    the ring cannot take although the storage allows it (a writer stopped
//    or killed between two steps of the fast path, a hostile client's stuck
//    reservation, a corrupt ring), after ~20 ms of retries on the request
//    thread, is parked and answered later from the service loop: retried
//    every park_retry (only while the ring's newest reservation has its
//    word0: no busy loop there) until the sweep repairs the ring, with the
//    normal result; EINTR (nothing queued) within park_retry once the
//    caller is interrupted (a signal; a kill, which the kernel makes wait
//    for the answer); ENOMEM (nothing queued) after park_limit, at once when
//    max_parked_per_group writes of that group or max_parked in all are
//    parked, and on shutdown.  So a hostile client can hold at most
//    max_parked x max_message_size bytes of the daemon, no thread.
//  - flush: publishes delayed messages (fsync on FUSE; the FLUSH ioctl).
//  - ioctl: `in` holds at least spec.in_size bytes (the transport fetched
//    them).  SLEEP is answered later: 0 by AWAKE, EINTR when the caller is
//    interrupted (signal, kill) or the daemon stops; an interrupted sleeper
//    is gone and AWAKE does not count it.  Master-only and unknown numbers
//    fail EPERM.
//  - FAST_TICKET (synchmess_fast.h): a ticket for the caller's uid and the
//    group's current segment; ENOTTY when the fast path is off, EAGAIN while
//    an older segment drains or the token table is full.  FAST_KICK
//    notifies the group's pollers (a fast-path writer published).
//  - poll: POLLIN when a message is readable; POLLOUT always (a write never
//    blocks).  A poller is notified when a message becomes readable.  At
//    most one poll handle is kept per open file: a new poll replaces (and
//    destroys) the file's previous handle, so memory is bounded by the
//    number of open files whatever the number of polls.  While a group has
//    poll handles its rings' pollers flag is set (shm_ring.h), so that
//    fast-path writers send FAST_KICK.
// Sleepers: each SLEEP is tracked by an object of its own (SleepCall), never
// by the fuse_req_t alone, whose address libfuse recycles once answered.
// Poll handles are notified and destroyed through a PollHandles (libfuse's
// by default; tests record), interrupts registered through the Reply.
// With a backend (set_backend, synchmessd --cluster) read, write, flush,
// AWAKE, SET_SEND_DELAY, REVOKE, FLUSH and poll's readability go to it
// (group_backend.h); open tells it the group is in use.
// Thread safety: every method may run on any thread at once.  The
// interrupt callback only records and posts; the owner of the reply answers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/group.h"
#include "core/ioctl_codec.h"
#include "requests/fast_tickets.h"
#include "requests/fuse_api.h"
#include "requests/group_backend.h"
#include "requests/reply.h"

namespace synchmess {

// What GroupRequests does with the poll handles it keeps: each handle is
// destroyed exactly once, and notified at most once before that.
class PollHandles {
 public:
  virtual void notify(fuse_pollhandle* ph) noexcept = 0;   // fuse_lowlevel_notify_poll
  virtual void destroy(fuse_pollhandle* ph) noexcept = 0;  // fuse_pollhandle_destroy

 protected:
  ~PollHandles() = default;
};

// The production PollHandles: libfuse.  Stateless; one object for the process.
class LibfusePollHandles final : public PollHandles {
 public:
  void notify(fuse_pollhandle* ph) noexcept override;
  void destroy(fuse_pollhandle* ph) noexcept override;
};
extern constinit LibfusePollHandles libfuse_poll_handles;

class GroupRequests final : public GroupListener {
 public:
  GroupRequests(boost::asio::io_context& io, unsigned max_groups,
                PollHandles& poll_handles = libfuse_poll_handles);
  ~GroupRequests();
  GroupRequests(const GroupRequests&) = delete;
  GroupRequests& operator=(const GroupRequests&) = delete;

  void open(Group& g, Reply reply, fuse_file_info& fi);
  void release(Group& g, Reply reply, const fuse_file_info& fi);
  void read(Group& g, Reply reply, std::size_t size);
  void write(Group& g, Reply reply, std::span<const std::byte> bytes);
  void flush(Group& g, Reply reply);
  void ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in);
  void poll(Group& g, Reply reply, const fuse_file_info& fi, fuse_pollhandle* ph);

  // Before any request: the group operations named above go to `backend`
  // (which outlives this object's requests).  nullptr: the local core.
  void set_backend(GroupBackend* backend) noexcept { backend_ = backend; }
  GroupBackend* backend() const noexcept { return backend_; }
  // Before any request: the fast path's hand-out.  nullptr (the default,
  // synchmessd --no-fast, and always with a backend): FAST_TICKET fails
  // ENOTTY.  socket_path is copied into every ticket.
  void set_fast(FastTickets* tickets, std::string socket_path) {
    fast_tickets_ = tickets;
    fast_socket_ = std::move(socket_path);
  }

  void on_readable(Group& g) noexcept override;
  // Drops every registered poll handle (pollers get no further wake-ups).
  void shutdown() noexcept;

  // Parked device writes (see write above).
  static constexpr unsigned max_parked_per_group = 8;
  static constexpr unsigned max_parked = 64;
  static constexpr std::chrono::milliseconds park_retry{10};
  static constexpr std::chrono::milliseconds park_limit{6000};  // > the sweep's 5.3 s live bound
  std::size_t parked_writes() const;
  // Retries the parked writes now (the service loop only: the sweep calls
  // it right after it repaired a ring, before a client can take the tail).
  void retry_parked_now() { retry_parked(); }

  // Poll handles held now, in all groups (for tests and statistics).
  std::size_t poll_handles() const noexcept { return static_cast<std::size_t>(poll_handles_.load()); }

  // Tests only (set before any request): runs inside every SLEEP after
  // Group::sleep returned and before the ticket is stored, the window the
  // comments of sleep() are about, so a test can complete the sleeper and
  // reuse its request id there.
  void set_sleep_window_hook(std::function<void()> hook) { sleep_window_hook_ = std::move(hook); }

 private:
  // One SLEEP request.  Shared by the barrier's completion, the table of
  // sleepers (for the interrupt callback) and sleep() itself.
  struct SleepCall {
    Group* group;
    Barrier::Ticket ticket = 0;  // 0 until Group::sleep returned
    bool interrupted = false;    // an interrupt came before the ticket
    bool done = false;           // the barrier completed it
  };
  struct Pollers {
    std::mutex mu;
    std::unordered_map<std::uint64_t, fuse_pollhandle*> by_file;  // fi.fh -> handle
  };

  // A device write the ring could not take now (see write above).
  struct ParkedWrite {
    Group* group;
    Reply reply;
    std::vector<std::byte> bytes;
    std::chrono::steady_clock::time_point deadline;
  };
  void park(Group& g, Reply reply, std::span<const std::byte> bytes);
  void arm_parked();    // the service loop only
  void retry_parked();  // the service loop only

  void sleep(Group& g, Reply reply);
  void fast_ticket(Group& g, Reply reply);
  void backend_ioctl(Group& g, Reply reply, IoctlSpec spec, std::span<const std::byte> in);
  static void on_interrupt(fuse_req_t req, void* self);
  void interrupted(fuse_req_t req);
  Pollers& pollers(unsigned descriptor);
  void notify_pollers(Group& g) noexcept;

  boost::asio::io_context& io_;
  const unsigned max_groups_;
  PollHandles& handles_;
  GroupBackend* backend_ = nullptr;
  FastTickets* fast_tickets_ = nullptr;
  std::string fast_socket_;
  std::function<void()> sleep_window_hook_;
  std::atomic<std::uint64_t> next_file_{1};
  // Sleepers by request: an entry lives from sleep() until the completion,
  // which erases it before it answers.  While libfuse runs an interrupt
  // callback for a request it holds that request alive, so its address
  // cannot be reused by another request during the lookup.
  std::mutex sleepers_mu_;
  std::unordered_map<fuse_req_t, std::shared_ptr<SleepCall>> sleepers_;
  std::mutex pollers_mu_;  // creation of pollers_ entries only
  std::unique_ptr<std::atomic<Pollers*>[]> pollers_;  // index: descriptor
  std::atomic<long> poll_handles_{0};                 // registered in all groups
  mutable std::mutex parked_mu_;
  std::vector<ParkedWrite> parked_;         // in arrival order
  std::vector<unsigned> parked_by_group_;   // index: descriptor
  bool parked_armed_ = false;               // a retry is posted or the timer armed
  bool parked_stopped_ = false;             // shutdown(): no more parking
  boost::asio::steady_timer parked_timer_;  // the service loop only
};

}  // namespace synchmess
