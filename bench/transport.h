// transport.h - the queues a workload runs against.
//
// Contract: a Transport is set up once in the parent (prepare), then each
// of the two workload processes calls attach() after fork() to get its own
// Groups (the original benchmark's "install every group, open it O_RDWR").
// cleanup() runs in the parent after both processes exited.
//
// Groups are numbered 0..count()-1 here (device descriptor = index + 1).
// Every call returns >= 0 on success or -errno; read() returns 0 for an
// empty group and never blocks.  Calls are thread-safe in the sense the
// underlying system calls are: all threads of a process share the fds.
//
// Implemented by: the SynchMess ABI on a device or FUSE file (DeviceTransport,
// used for both the daemon and the echo floor), one packet-mode pipe per
// group, one POSIX message queue per group.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "shared_block.h"

namespace synchmess::bench {

class Groups {
 public:
  virtual ~Groups() = default;
  virtual long write(unsigned g, const void* buf, std::size_t n) = 0;
  virtual long read(unsigned g, void* buf, std::size_t n) = 0;
  virtual int flush(unsigned g) = 0;
  virtual int sleep(unsigned g) = 0;
  virtual long awake(unsigned g) = 0;
  virtual int set_delay(unsigned g, unsigned ms) = 0;
  virtual int revoke(unsigned g) = 0;
};

struct TransportOptions {
  unsigned groups = 64;
  std::size_t message_size = 128;
};

enum class FlushMode { kAuto, kFsync, kIoctl };

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string kind() const = 0;         // "synchmess", "pipe", ...
  virtual std::string description() const = 0;  // one line for the report
  // False: no delayed messages, no flush (the baselines).
  virtual bool has_delay() const = 0;
  // Parent, before fork.  Returns an error text or "".
  virtual std::string prepare() = 0;
  // Child, after fork.  Records install/open latencies into setup.  On
  // failure returns null and fills *error.
  virtual std::unique_ptr<Groups> attach(ControlBlock* cb, ThreadStats* setup,
                                         std::string* error) = 0;
  virtual void cleanup() = 0;
};

std::unique_ptr<Transport> make_device_transport(const std::string& master,
                                                 const TransportOptions& o,
                                                 FlushMode flush);
std::unique_ptr<Transport> make_pipe_transport(const TransportOptions& o);
std::unique_ptr<Transport> make_mqueue_transport(const TransportOptions& o);

// Futex-based SLEEP/AWAKE over ControlBlock::barrier, for the baselines.
int barrier_sleep(SleepBarrier* b);
long barrier_awake(SleepBarrier* b);

}  // namespace synchmess::bench
