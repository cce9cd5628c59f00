// machine_info.cpp - see machine_info.h.
#include "machine_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>

namespace synchmess::bench {

MachineInfo read_machine_info() {
  MachineInfo m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      m.cpu_model = line.substr(colon + 1);
      auto first = m.cpu_model.find_first_not_of(" \t");
      m.cpu_model = first == std::string::npos ? "" : m.cpu_model.substr(first);
    }
    break;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m.cores = n > 0 ? unsigned(n) : 0;
  struct utsname u;
  if (uname(&u) == 0) {
    m.kernel = std::string(u.sysname) + " " + u.release + " " + u.version +
               " " + u.machine;
    m.hostname = u.nodename;
  }
  return m;
}

}  // namespace synchmess::bench
