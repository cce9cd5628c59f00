// machine_info.h - what the report says about the machine it ran on.
#pragma once

#include <string>

namespace synchmess::bench {

struct MachineInfo {
  std::string cpu_model;  // first "model name" of /proc/cpuinfo
  unsigned cores = 0;     // online CPUs
  std::string kernel;     // uname: sysname release version machine
  std::string hostname;
};

MachineInfo read_machine_info();

}  // namespace synchmess::bench
