// runner.h - runs the workload against one transport and collects figures.
//
// Contract: run_target() maps a fresh ControlBlock (MAP_SHARED), prepares
// the transport, forks the consumer and the producer process, starts them
// together, prints a progress line to stderr once a second, waits for both
// (a watchdog kills them, by pid, if the run overruns by more than two
// minutes), merges the per-thread histograms and returns a TargetResult.
// merge() folds a later round of the same target into an earlier one.
//
// Thread safety: call from a single-threaded parent (it forks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "histogram.h"
#include "seen_set.h"
#include "shared_block.h"
#include "transport.h"
#include "workload.h"

namespace synchmess::bench {

struct TargetResult {
  std::string name;         // "device", "floor", "pipe", "mqueue"
  std::string kind;         // Transport::kind()
  std::string description;
  bool has_delay = false;
  // FinalMode::kRevoke on a transport with delays: messages still delayed
  // at the end are destroyed, so "missing" counts revoked ones too.
  bool revoked_at_end = false;
  bool ok = true;
  std::string error;
  unsigned rounds = 0;

  LogHistogram hist[kOpCount];   // workload threads + install/open
  LogHistogram final_hist[kOpCount];  // the final flush/revoke/drain/reset

  double phase1_s = 0, phase2_s = 0, final_s = 0;
  std::uint64_t awake_calls = 0;
  std::uint64_t wake_all_ns = 0;  // first successful AWAKE -> last sleeper up (max over rounds)
  std::string flush_method;

  DeliveryCheck check;
  std::uint64_t drained = 0, out_of_range = 0;
  std::uint64_t write_full = 0, write_errors = 0, read_errors = 0;
  std::uint64_t corrupt = 0, duplicates = 0, other_errors = 0;

  // p50 of phase-1 write and read-hit per round, in ns (noise indicator).
  std::vector<std::uint64_t> round_write_p50, round_read_p50;
  std::vector<double> round_delivered_per_s;

  bool exactly_once() const;
  double delivered_per_s_phase1() const;
  void merge(const TargetResult& later);
};

struct RunOptions {
  bool progress = true;
};

TargetResult run_target(const std::string& name, Transport& t,
                        const WorkloadOptions& o, const RunOptions& ro);

}  // namespace synchmess::bench
