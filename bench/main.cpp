// main.cpp - synchmess-bench: parse options, start the echo floor if asked,
// run every target (rounds interleave the targets), print and save results.
//
// Exit status: 0 when every target ran and passed the exactly-once check,
// 1 otherwise, 2 for a bad command line.
#include <signal.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "floor_server.h"
#include "machine_info.h"
#include "options.h"
#include "report.h"
#include "runner.h"

namespace synchmess::bench {
namespace {

std::unique_ptr<Transport> make_transport(const std::string& name,
                                          const BenchOptions& o,
                                          const std::string& floor_master) {
  TransportOptions to{o.workload.groups, o.workload.message_size};
  if (name == "device") return make_device_transport(o.master, to, o.flush);
  if (name == "floor") return make_device_transport(floor_master, to, o.flush);
  if (name == "pipe") return make_pipe_transport(to);
  return make_mqueue_transport(to);
}

int run(int argc, char** argv) {
  BenchOptions o;
  std::string err = parse_options(argc, argv, &o);
  if (err == "help") {
    fmt::print("{}", usage());
    return 0;
  }
  if (!err.empty()) {
    fmt::print(stderr, "synchmess-bench: {}\n{}", err, usage());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  MachineInfo machine = read_machine_info();

  FloorServer floor;
  std::string floor_master = o.floor_master;
  std::string floor_error;
  bool want_floor = false;
  for (const auto& t : o.targets) want_floor = want_floor || t == "floor";
  if (want_floor && floor_master.empty()) {
    std::string bin = o.floor_bin.empty()
                          ? self_dir() + "/synchmess-echo-floor"
                          : o.floor_bin;
    floor_error = floor.start(bin, o.floor_threads);
    if (floor_error.empty()) {
      floor_master = floor.master();
      fmt::print(stderr, "synchmess-bench: echo floor mounted, master {}\n",
                 floor_master);
    } else {
      fmt::print(stderr, "synchmess-bench: echo floor: {}\n", floor_error);
    }
  }

  RunOptions ro;
  ro.progress = o.progress;
  std::vector<TargetResult> results(o.targets.size());
  for (unsigned round = 0; round < o.rounds; ++round) {
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      const std::string& name = o.targets[i];
      TargetResult r;
      if (name == "floor" && floor_master.empty()) {
        r.name = name;
        r.kind = "synchmess";
        r.ok = false;
        r.rounds = 1;
        r.error = "echo floor not available: " + floor_error;
      } else {
        auto transport = make_transport(name, o, floor_master);
        r = run_target(name, *transport, o.workload, ro);
      }
      fmt::print(stderr,
                 "synchmess-bench: {} round {}: {}; write p50 {:.1f} us, "
                 "delivered {:.0f}/s (phase 1), exactly-once {}\n",
                 name, round + 1, r.ok ? "ok" : "FAILED: " + r.error,
                 double(r.hist[kWrite1].percentile(0.5)) / 1e3,
                 r.delivered_per_s_phase1(), r.exactly_once() ? "PASS" : "FAIL");
      if (round == 0) results[i] = std::move(r);
      else results[i].merge(r);
    }
  }
  floor.stop();

  print_report(stdout, machine, o, results);
  int rc = 0;
  for (const auto& r : results)
    if (!r.ok || !r.exactly_once()) rc = 1;
  if (!o.json_path.empty()) {
    std::string jerr = write_json(o.json_path, machine, o, results);
    if (!jerr.empty()) {
      fmt::print(stderr, "synchmess-bench: json: {}\n", jerr);
      rc = 1;
    }
  }
  return rc;
}

}  // namespace
}  // namespace synchmess::bench

int main(int argc, char** argv) { return synchmess::bench::run(argc, argv); }
