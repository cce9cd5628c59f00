// fast_path.h - the daemon's side of the shared-memory fast path, on the
// service loop: the hand-out socket and the sweep of shared segments.
//
// Contract (docs/abi.md "Fast path"):
//  - start(): binds an AF_UNIX SOCK_SEQPACKET socket at `path` (mode 0666:
//    the one-time token authenticates; a stale socket file is replaced, a
//    socket another daemon still serves is not).  Each connection: one
//    struct synchmess_fast_request; the token is redeemed for the peer's
//    SO_PEERCRED uid and the group; one struct synchmess_fast_reply goes
//    back, with the group's memfd (SCM_RIGHTS) when error == 0; then the
//    connection is closed.  A connection that sends nothing within 1 s is
//    closed; at most `max_connections` are served at once (more are closed
//    at once).  Errors in the reply: EINVAL (not one 16-byte request),
//    EACCES (token unknown, used, expired, for another uid or group),
//    ENODEV (group gone), EAGAIN (an older segment still drains).
//  - Every 100 ms, each group whose segment was handed out (or that saw
//    corruption) is swept (Group::sweep, stall bound 100 ms, a pid is alive
//    while kill(pid, 0) does not fail with ESRCH).  A re-formatted or given
//    up ring is logged at most once per 10 s per group.
//  - stop(): closes the socket, removes its file, stops the timer.
// Thread safety: start/stop from the thread that runs the service; the
// handlers run on `io`'s thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/registry.h"
#include "requests/fast_tickets.h"

namespace synchmess {

class FastPath {
 public:
  static constexpr unsigned default_max_connections = 64;
  FastPath(boost::asio::io_context& io, Registry& registry, FastTickets& tickets, std::string path,
           unsigned max_connections = default_max_connections);
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  bool start(std::string& error);
  void stop();
  // Before start: called on `io`'s thread right after a sweep repaired a
  // group's ring (records given up, or re-formatted), so that device writes
  // parked behind it are retried at once (GroupRequests).
  void on_repaired(std::function<void(Group&)> fn);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace synchmess
