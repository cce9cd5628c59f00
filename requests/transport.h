// transport.h - what the service needs from a transport (CUSE or FUSE).
//
// Contract:
//  - start() creates the master device (and serves requests on the
//    service's io_context); it returns once the master exists, or an error
//    message.
//  - ensure_group(d, done) makes the device of installed group d exist;
//    done runs once, on any thread, when the device can be opened (or with
//    an error).  Idempotent.
//  - group_path(d) is the path written back by IOCTL_INSTALL_GROUP.
//  - begin_stop() stops reading requests (any thread); finish_stop() runs
//    after the io_context stopped and removes every device.
#pragma once

#include <functional>
#include <string>

#include "core/errc.h"

namespace synchmess {

class Transport {
 public:
  using Done = std::move_only_function<void(Result<void>)>;

  virtual ~Transport() = default;
  virtual Result<void> start(std::string& error_message) = 0;
  virtual void ensure_group(unsigned descriptor, Done done) = 0;
  virtual std::string group_path(unsigned descriptor) const = 0;
  virtual void begin_stop() = 0;
  virtual void finish_stop() = 0;
  virtual const char* name() const noexcept = 0;
};

}  // namespace synchmess
