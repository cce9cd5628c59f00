// options.h - the fuzzer's command line, shared by every mode.
// Plain data; parse_options() (main.cpp) is the only code.
#pragma once

#include <cstdint>
#include <string>

namespace fuzz {

struct Options {
  std::string mode;             // storm | warmup | check-sleepers | check-groups | check-awake
  std::string dev_dir = "/dev/synch";
  unsigned seconds = 20;        // storm length
  unsigned workers = 6;         // storm processes
  std::uint64_t max_ops = 5'000'000;  // storm: operations in all, at most
  std::uint64_t seed = 0;       // 0: pick one (printed)
  std::uint64_t worker_seed = 0;  // nonzero: every worker uses it (replays one worker)
  bool kill_workers = true;     // storm: SIGKILL and respawn workers at random
  unsigned groups = 64;         // descriptors 1..groups exist (the daemon's --max-groups)
  unsigned sleepers = 8;        // check-awake: K
  // Learned at start (GET_PARAMS), not options:
  std::uint64_t max_message = 1024;
  std::uint64_t max_storage = 1048576;
};

// Fills o from argv; on a bad command line prints usage and returns false.
bool parse_options(int argc, char** argv, Options& o);

}  // namespace fuzz
