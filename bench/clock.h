// clock.h - wall-clock time for the benchmark: CLOCK_MONOTONIC in ns.
//
// The same clock in every process of the machine, so a time taken in the
// producer process can be compared with one taken in the consumer process.
#pragma once

#include <cstdint>
#include <ctime>

namespace synchmess::bench {

inline std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ULL + std::uint64_t(ts.tv_nsec);
}

}  // namespace synchmess::bench
