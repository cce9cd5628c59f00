// report.h - the human table on stdout and the JSON file.
//
// Contract: print_report() writes, per target, a latency table (p50, p99,
// max in microseconds, count and ops/s per operation type), the message
// check and the hand-off; then a comparison of the targets' p50 with the
// ratio device/floor.  write_json() writes the same figures, in ns, plus
// the machine and the options; it returns an error text or "".
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "machine_info.h"
#include "options.h"
#include "runner.h"

namespace synchmess::bench {

void print_report(std::FILE* out, const MachineInfo& m, const BenchOptions& o,
                  const std::vector<TargetResult>& results);
std::string write_json(const std::string& path, const MachineInfo& m,
                       const BenchOptions& o,
                       const std::vector<TargetResult>& results);

}  // namespace synchmess::bench
