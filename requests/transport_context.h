// transport_context.h - what a transport borrows from the service.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/registry.h"
#include "core/size_limits.h"
#include "requests/group_requests.h"

namespace synchmess {

struct TransportContext {
  boost::asio::io_context& io;
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
