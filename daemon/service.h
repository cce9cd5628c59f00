// service.h - synchmessd: its loop, the request threads, the core, and one transport.
//
// Contract: run() starts the transport (the master device), calls ready()
// once the master exists, serves until SIGTERM/SIGINT, then answers every
// pending request (sleepers get EINTR), removes the devices and returns the
// exit status: 0 after a clean stop, 1 if the transport could not start or
// lost the master device or the mount while serving (logged with why).
// Thread safety: run() once, from one thread; it runs
// its own loop on one thread, and options.threads request threads (the
// transport's readers for FUSE, one io_context each for CUSE).
#pragma once

#include <functional>
#include <memory>

#include "daemon/options.h"

namespace synchmess {

struct TransportContext;

class Service {
 public:
  explicit Service(Options options);
  ~Service();
  int run(std::function<void()> ready);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace synchmess
