// transport_context.h - what a transport borrows from the service.
//
// Threads: `io` is the service's own loop (one thread): timers, the remote
// writer, interrupts, signals: work that waits.  Requests are served by
// request threads that read and answer them with no hand-off: `loops`
// (one io_context per thread, concurrency hint 1) for transports that
// serve many sessions (CUSE spreads its devices over them), or
// `request_threads` threads of the transport's own (SessionReaders, FUSE).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/registry.h"
#include "core/size_limits.h"
#include "requests/group_requests.h"

namespace synchmess {

struct TransportContext {
  boost::asio::io_context& io;
  std::vector<boost::asio::io_context*> loops;  // may be empty (then use request_threads)
  unsigned request_threads = 1;
  Registry& registry;
  Limits& limits;
  GroupRequests& groups;
  std::string dev_dir;
  // The transport lost what it cannot serve without (the master device,
  // the mount): the service logs `why` and exits non-zero, so a supervisor
  // restarts it.  Any thread; at most once matters.
  std::function<void(std::string why)> lost;
};

}  // namespace synchmess
