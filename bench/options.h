// options.h - the command line of synchmess-bench.
//
// Contract: parse_options() fills BenchOptions from argv or returns an
// error text ("" on success; "help" when --help was asked).  usage() is the
// reference for every option and its default.
#pragma once

#include <string>
#include <vector>

#include "transport.h"
#include "workload.h"

namespace synchmess::bench {

struct BenchOptions {
  std::string master = "/dev/synch/synchmess";
  std::vector<std::string> targets = {"device", "floor", "pipe", "mqueue"};
  WorkloadOptions workload;
  FlushMode flush = FlushMode::kAuto;
  unsigned rounds = 1;
  std::string floor_master;  // use an already running floor at this master
  std::string floor_bin;     // default: next to this executable
  unsigned floor_threads = 10;
  std::string json_path;
  bool progress = true;
};

std::string parse_options(int argc, char** argv, BenchOptions* o);
std::string usage();

}  // namespace synchmess::bench
