// transport_context.h - what a transport borrows from the service.
#pragma once

#include <string>

#include <boost/asio/io_context.hpp>

#include "core/registry.h"
#include "core/size_limits.h"
#include "daemon/group_requests.h"

namespace synchmess {

struct TransportContext {
  boost::asio::io_context& io;
  Registry& registry;
  Limits& limits;
  GroupRequests& groups;
  std::string dev_dir;
};

}  // namespace synchmess
