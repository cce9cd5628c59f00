// floor_server.h - FloorServer: starts and stops synchmess-echo-floor.
//
// Contract: start() makes a temporary directory, runs the echo floor binary
// on it as a child process and returns once the FUSE mount answers (10 s
// timeout); master() is then DIR/synchmess.  stop() (also run by the
// destructor) sends SIGTERM to that child only, waits up to 5 s, falls back
// to SIGKILL, detaches the mount if it is still there and removes the
// directory.
//
// Thread safety: single-threaded use.
#pragma once

#include <sys/types.h>

#include <string>

namespace synchmess::bench {

class FloorServer {
 public:
  FloorServer() = default;
  ~FloorServer() { stop(); }
  FloorServer(const FloorServer&) = delete;
  FloorServer& operator=(const FloorServer&) = delete;

  // Returns an error text, or "" on success.
  std::string start(const std::string& binary, unsigned threads);
  void stop();
  std::string master() const { return dir_ + "/synchmess"; }

 private:
  pid_t pid_ = -1;
  std::string dir_;
};

// The directory this executable lives in (for the default floor binary).
std::string self_dir();

}  // namespace synchmess::bench
