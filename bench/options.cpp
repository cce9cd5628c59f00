// options.cpp - see options.h.
#include "options.h"

#include <charconv>
#include <sstream>

#include "message.h"
#include "shared_block.h"
#include "synchmess_interface.h"

namespace synchmess::bench {
namespace {

template <typename T>
bool parse_number(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

std::string usage() {
  return
      "usage: synchmess-bench [options]\n"
      "The original SynchMess benchmark (producer + consumer process, 8+8\n"
      "threads, 64 groups, 2 phases) against any device speaking the ABI,\n"
      "plus baselines, with wall-clock latency percentiles.\n"
      "\n"
      "  --master PATH        master device of the target under test\n"
      "                       (default /dev/synch/synchmess)\n"
      "  --targets LIST       comma list of device,floor,pipe,mqueue\n"
      "                       (default: all four, run in that order)\n"
      "  --floor              add the echo floor to the targets\n"
      "  --floor-master PATH  use an echo floor already mounted there instead\n"
      "                       of starting one\n"
      "  --floor-bin PATH     echo floor binary (default: synchmess-echo-floor\n"
      "                       next to this executable)\n"
      "  --floor-threads N    the floor's max worker threads (default 10)\n"
      "  --threads N          producers = consumers per process (default 8)\n"
      "  --groups N           groups 1..N (default 64, max 64)\n"
      "  --duration S         seconds per phase (default 30)\n"
      "  --quick              --duration 3\n"
      "  --message-size B     bytes per message (default 128, min 40)\n"
      "  --delay-ms MS        phase 2 send delay (default 1000)\n"
      "  --flush MODE         auto|fsync|ioctl (default auto: fsync, and\n"
      "                       IOCTL_FLUSH_DELAYED_MESSAGES once fsync fails\n"
      "                       with EINVAL, as on CUSE)\n"
      "  --final MODE         flush|revoke (default flush: flush every group,\n"
      "                       then revoke (a no-op now), drain, reset delay;\n"
      "                       revoke: revoke first, so delayed messages are\n"
      "                       destroyed and reported as missing/revoked)\n"
      "  --rounds N           repeat the target list N times, alternating\n"
      "                       (default 1); figures merge all rounds\n"
      "  --json FILE          also write every figure as JSON\n"
      "  --no-progress        no progress line on stderr\n"
      "  --help\n";
}

std::string parse_options(int argc, char** argv, BenchOptions* o) {
  bool floor_added = false;
  bool targets_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    auto bad = [&](const char* what) {
      return "bad value for " + arg + " (" + what + "): '" + value + "'";
    };
    WorkloadOptions& w = o->workload;
    if (arg == "--help" || arg == "-h") return "help";
    if (arg == "--quick") {
      w.duration_ns = 3'000'000'000ULL;
    } else if (arg == "--floor") {
      floor_added = true;
    } else if (arg == "--no-progress") {
      o->progress = false;
    } else if (!need()) {
      return "missing value for " + arg;
    } else if (arg == "--master") {
      o->master = value;
    } else if (arg == "--targets") {
      o->targets = split(value);
      targets_given = true;
      for (const auto& t : o->targets)
        if (t != "device" && t != "floor" && t != "pipe" && t != "mqueue")
          return "unknown target '" + t + "'";
    } else if (arg == "--floor-master") {
      o->floor_master = value;
    } else if (arg == "--floor-bin") {
      o->floor_bin = value;
    } else if (arg == "--floor-threads") {
      if (!parse_number(value, &o->floor_threads) || o->floor_threads == 0)
        return bad("a positive number");
    } else if (arg == "--threads") {
      if (!parse_number(value, &w.threads) || w.threads == 0 ||
          w.threads > kMaxThreads)
        return bad("1..32");
    } else if (arg == "--groups") {
      if (!parse_number(value, &w.groups) || w.groups == 0 ||
          w.groups > MAX_NUM_GROUPS)
        return bad("1..64");
    } else if (arg == "--duration") {
      double s = 0;
      if (!parse_number(value, &s) || s <= 0 || s > 86400) return bad("seconds");
      w.duration_ns = std::uint64_t(s * 1e9);
    } else if (arg == "--message-size") {
      if (!parse_number(value, &w.message_size) ||
          w.message_size < kMinMessageSize || w.message_size > 65536)
        return bad("40..65536");
    } else if (arg == "--delay-ms") {
      if (!parse_number(value, &w.delay_ms)) return bad("milliseconds");
    } else if (arg == "--flush") {
      if (value == "auto") o->flush = FlushMode::kAuto;
      else if (value == "fsync") o->flush = FlushMode::kFsync;
      else if (value == "ioctl") o->flush = FlushMode::kIoctl;
      else return bad("auto|fsync|ioctl");
    } else if (arg == "--final") {
      if (value == "flush") w.final_mode = FinalMode::kFlush;
      else if (value == "revoke") w.final_mode = FinalMode::kRevoke;
      else return bad("flush|revoke");
    } else if (arg == "--rounds") {
      if (!parse_number(value, &o->rounds) || o->rounds == 0) return bad("N >= 1");
    } else if (arg == "--json") {
      o->json_path = value;
    } else {
      return "unknown option " + arg;
    }
  }
  if (floor_added && targets_given) {
    bool present = false;
    for (const auto& t : o->targets) present = present || t == "floor";
    if (!present) o->targets.push_back("floor");
  }
  if (o->targets.empty()) return "no targets";
  return "";
}

}  // namespace synchmess::bench
