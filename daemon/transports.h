// transports.h - the transport factories (each lives in its own folder).
#pragma once

#include <memory>

#include "daemon/transport.h"
#include "daemon/transport_context.h"

namespace synchmess {

std::unique_ptr<Transport> make_cuse_transport(TransportContext ctx);
std::unique_ptr<Transport> make_fuse_transport(TransportContext ctx);

// True when /dev/cuse exists, after trying `modprobe cuse` if it did not;
// `why` says what was found, for the log.
bool cuse_available(std::string& why);

}  // namespace synchmess
