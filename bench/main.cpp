// main.cpp - synchmess-bench: options (CLI11), the echo floor's lifetime,
// the target loop (rounds interleave the targets), the report on stdout
// and the JSON file (nlohmann-json).
//
// Exit status: 0 when every target ran and passed the exactly-once check,
// 1 otherwise, 2 for a bad command line.
#include <signal.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include <fmt/format.h>

#include "bench.h"
#include "sm_codec.h"
#include "synchmess_interface.h"

namespace synchmess::bench {
namespace {

struct Options {
  std::string master = "/dev/synch/synchmess";
  std::vector<std::string> targets = {"device", "floor", "pipe", "mqueue"};
  WorkloadOptions w;
  std::string flush = "auto", final_mode = "flush";
  unsigned rounds = 1, floor_threads = 10;
  std::string floor_master, floor_bin, json_path;
  bool progress = true;
};

// Returns an exit code to stop with, or nullopt to run.
std::optional<int> parse(int argc, char** argv, Options& o) {
  CLI::App app("The original SynchMess benchmark (producer + consumer process, 8+8 threads,\n"
               "64 groups, 2 phases) against any device speaking the ABI, plus baselines,\n"
               "with wall-clock latency percentiles.  See bench/README.md.", "synchmess-bench");
  app.option_defaults()->always_capture_default();
  double duration_s = 30;
  bool add_floor = false, quick = false, no_progress = false;
  app.add_option("--master", o.master, "master device of the target under test");
  auto* targets = app.add_option("--targets", o.targets, "comma list, run in this order")
                      ->delimiter(',')->check(CLI::IsMember({"device", "floor", "pipe", "mqueue"}));
  app.add_flag("--floor", add_floor, "add the echo floor to an explicit --targets list");
  app.add_option("--floor-master", o.floor_master, "use an echo floor already mounted there");
  app.add_option("--floor-bin", o.floor_bin, "echo floor binary (default: next to this executable)");
  app.add_option("--floor-threads", o.floor_threads, "the floor's max worker threads")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.w.threads, "producers = consumers per process")->check(CLI::Range(1u, kMaxThreads));
  app.add_option("--groups", o.w.groups, "groups 1..N")->check(CLI::Range(1, MAX_NUM_GROUPS));
  auto* duration = app.add_option("--duration", duration_s, "seconds per phase")
                       ->check(CLI::PositiveNumber & CLI::Range(0.0, 86400.0));
  app.add_flag("--quick", quick, "--duration 3")->excludes(duration);
  app.add_option("--message-size", o.w.message_size, "bytes per message (the codec's trailer is 40)")
      ->check(CLI::Range(std::size_t(SMC_TRAILER_SIZE), std::size_t(65536)));
  app.add_option("--delay-ms", o.w.delay_ms, "phase 2 send delay");
  app.add_option("--flush", o.flush, "auto: fsync, then IOCTL_FLUSH_DELAYED_MESSAGES once fsync "
                 "fails with EINVAL (CUSE)")->check(CLI::IsMember({"auto", "fsync", "ioctl"}));
  app.add_option("--final", o.final_mode, "flush: flush, revoke, drain, reset delay; revoke: "
                 "skip the flush, delayed messages are reported missing (revoked)")
      ->check(CLI::IsMember({"flush", "revoke"}));
  app.add_option("--rounds", o.rounds, "repeat the target list, interleaved; figures merge all rounds")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", o.json_path, "also write every figure (ns) as JSON");
  app.add_flag("--no-progress", no_progress, "no progress line on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (add_floor && targets->count() && std::ranges::find(o.targets, "floor") == o.targets.end())
    o.targets.push_back("floor");
  o.w.duration_ns = std::uint64_t((quick ? 3.0 : duration_s) * 1e9);
  o.w.flush = o.flush == "fsync" ? FlushMode::kFsync : o.flush == "ioctl" ? FlushMode::kIoctl : FlushMode::kAuto;
  o.w.final_mode = o.final_mode == "revoke" ? FinalMode::kRevoke : FinalMode::kFlush;
  o.progress = !no_progress;
  return std::nullopt;
}

bool is_fuse_mount(const std::string& dir) {
  struct statfs s;
  return statfs(dir.c_str(), &s) == 0 && s.f_type == 0x65735546;  // FUSE_SUPER_MAGIC
}

// synchmess-echo-floor as a child process on a fresh /tmp directory:
// start() returns once the mount answers (10 s) or an error text; the
// destructor sends SIGTERM to that child only (SIGKILL after 5 s),
// detaches a leftover mount and removes the directory.
struct FloorServer {
  pid_t pid = -1;
  std::string dir;
  std::string master() const { return dir + "/synchmess"; }

  std::string start(const std::string& bin, unsigned threads) {
    if (access(bin.c_str(), X_OK) != 0) return "echo floor binary " + bin + ": " + std::strerror(errno);
    char tmpl[] = "/tmp/synchmess-floor-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir = tmpl;
    std::string thr = std::to_string(threads);
    if ((pid = fork()) == 0) {
      execl(bin.c_str(), bin.c_str(), "--dir", dir.c_str(), "--threads", thr.c_str(), nullptr);
      _exit(127);
    }
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    for (int i = 0, status; i < 1000; ++i, usleep(10'000)) {
      if (is_fuse_mount(dir) && access(master().c_str(), R_OK) == 0) return "";
      if (waitpid(pid, &status, WNOHANG) == pid)
        return pid = -1, fmt::format("echo floor exited before mounting (status {})", status);
    }
    return "echo floor did not mount " + dir + " within 10 s";
  }
  ~FloorServer() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int i = 0, status;
      while (waitpid(pid, &status, WNOHANG) != pid && ++i < 500) usleep(10'000);
      if (i == 500) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    }
    if (!dir.empty()) {
      if (is_fuse_mount(dir)) umount2(dir.c_str(), MNT_DETACH);
      rmdir(dir.c_str());
    }
  }
};

// --- report -----------------------------------------------------------------

std::string us(std::uint64_t ns) { return fmt::format("{:.1f}", double(ns) / 1e3); }

const char* label(Op op, bool final_step) {
  if (final_step)
    switch (op) {
      case kFlush: return "final flush";
      case kRevoke: return "final revoke";
      case kSetDelay: return "reset delay 0";
      default: return "drain read";
    }
  static constexpr const char* kLabels[kOpCount] = {
      "install", "access+open", "write        p1", "read hit     p1", "read empty   p1",
      "write delayd p2", "read hit     p2", "read empty   p2", "flush        p2", "set delay",
      "in SLEEP", "AWAKE->running", "AWAKE call", "revoke", "drain read", "end-to-end   p1",
      "end-to-end   p2"};
  return kLabels[op];
}

constexpr Op kTableOrder[] = {kInstall, kOpen, kWrite1, kReadHit1, kReadEmpty1, kDeliver1, kSetDelay,
                              kSleep, kAwake, kHandoff, kWrite2, kReadHit2, kReadEmpty2, kDeliver2, kFlush};
constexpr Op kFinalOrder[] = {kFlush, kRevoke, kDrainRead, kSetDelay};
constexpr Op kCompareOps[] = {kWrite1, kReadHit1, kReadEmpty1, kDeliver1, kWrite2, kReadHit2,
                              kFlush, kAwake, kHandoff, kInstall, kSetDelay};

// Calls per second of the phase the op belongs to; nullopt for the others.
std::optional<double> ops_per_s(const TargetResult& r, Op op, const LogHistogram& h, bool final_step) {
  double s = final_step ? 0 : op == kWrite1 || op == kReadHit1 || op == kReadEmpty1 ? r.phase1_s
             : op == kWrite2 || op == kReadHit2 || op == kReadEmpty2 || op == kFlush ? r.phase2_s : 0;
  if (s <= 0 || h.count() == 0) return std::nullopt;
  return double(h.count()) / s;
}

struct Throughput {
  const char* label;
  const char* key;
  double (*f)(const TargetResult&);
};
constexpr Throughput kThroughputs[] = {
    {"writes/s p1", "writes_per_s_p1", [](const TargetResult& r) { return r.per_s_phase1(r.hist[kWrite1].count()); }},
    {"delivered/s p1", "delivered_per_s_p1", [](const TargetResult& r) { return r.delivered_per_s_phase1(); }},
    {"all ops/s p1", "all_ops_per_s_p1", [](const TargetResult& r) {
       return r.per_s_phase1(r.hist[kWrite1].count() + r.hist[kReadHit1].count() + r.hist[kReadEmpty1].count());
     }},
};

void print_target(std::FILE* out, const TargetResult& r) {
  fmt::print(out, "\n== {} ({}): {}\n", r.name, r.kind, r.description);
  if (!r.ok) fmt::print(out, "  FAILED: {}\n", r.error);
  fmt::print(out, "  rounds {}, phase 1 {:.2f} s, phase 2 {:.2f} s, final {:.3f} s{}\n", r.rounds,
             r.phase1_s, r.phase2_s, r.final_s,
             r.has_delay ? ", flush via " + (r.flush_method.empty() ? "-" : r.flush_method)
                         : std::string(", no delay/flush (baseline)"));
  fmt::print(out, "  {:<16} {:>10} {:>11} {:>10} {:>10} {:>11}\n", "op (wall clock)", "count", "ops/s",
             "p50 us", "p99 us", "max us");
  auto row = [&](Op op, const LogHistogram& h, bool fin) {
    if (h.count() == 0) return;
    auto rate = ops_per_s(r, op, h, fin);
    fmt::print(out, "  {:<16} {:>10} {:>11} {:>10} {:>10} {:>11}\n", label(op, fin), h.count(),
               rate ? fmt::format("{:.0f}", *rate) : "-", us(h.percentile(0.5)), us(h.percentile(0.99)),
               us(h.max()));
  };
  for (Op op : kTableOrder) row(op, r.hist[op], false);
  for (Op op : kFinalOrder) row(op, r.final_hist[op], true);
  const DeliveryCheck& c = r.check;
  fmt::print(out, "  messages: written {}, delivered {} (of which {} in the final drain), missing {}{}, "
             "duplicates {}, corrupt {}, unexpected {}\n", c.expected, c.delivered, r.drained, c.missing,
             r.revoked_at_end && c.missing ? " (revoked at the end, not lost)" : "",
             r.counter[kDuplicates], r.counter[kCorrupt], c.unexpected + r.out_of_range);
  fmt::print(out, "  full-group retries {}, write errors {}, read errors {}, other errors {}\n",
             r.counter[kWriteFull], r.counter[kWriteErrors], r.counter[kReadErrors], r.counter[kOtherErrors]);
  fmt::print(out, "  exactly-once after the final drain: {}\n", r.exactly_once() ? "PASS" : "FAIL");
  if (r.hist[kHandoff].count())
    fmt::print(out, "  hand-off: {} sleepers woken with {} AWAKE calls; all sleepers of a round running "
               "{} us after that round's first successful AWAKE{}\n", r.hist[kHandoff].count(),
               r.awake_calls, us(r.wake_all_ns), r.rounds > 1 ? " (worst round)" : "");
  if (r.rounds > 1) {
    std::string w, rd;
    for (auto v : r.round_write_p50) w += " " + us(v);
    for (auto v : r.round_read_p50) rd += " " + us(v);
    fmt::print(out, "  per round p50 write p1 (us):{}; read hit p1 (us):{}\n", w, rd);
  }
}

const TargetResult* find(const std::vector<TargetResult>& rs, const char* name) {
  for (const auto& r : rs)
    if (r.name == name && r.ok) return &r;
  return nullptr;
}

std::optional<double> ratio(double a, double b) { return a > 0 && b > 0 ? std::optional(a / b) : std::nullopt; }

struct Machine {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  std::string cpu, kernel, host;  // first "model name" of /proc/cpuinfo, uname
  Machine() {
    std::string line;
    for (std::ifstream in("/proc/cpuinfo"); cpu.empty() && std::getline(in, line);)
      if (line.starts_with("model name") && line.find(':') != std::string::npos)
        cpu = line.substr(line.find_first_not_of(" \t", line.find(':') + 1));
    struct utsname u {};
    uname(&u);
    kernel = fmt::format("{} {} {} {}", u.sysname, u.release, u.version, u.machine);
    host = u.nodename;
  }
};

void print_report(const std::vector<TargetResult>& rs, const Options& o, const Machine& m) {
  fmt::print("synchmess-bench: {} CPU(s) {}, {}\n", m.cores, m.cpu, m.kernel);
  fmt::print("workload: {} producer + {} consumer threads, {} groups, {} B messages, {:.1f} s per phase, "
             "delay {} ms, final {}, rounds {}\n", o.w.threads, o.w.threads, o.w.groups, o.w.message_size,
             double(o.w.duration_ns) / 1e9, o.w.delay_ms, o.final_mode, o.rounds);
  fmt::print("latencies are wall clock (CLOCK_MONOTONIC) per call; p1/p2 = phase 1/2\n");
  for (const auto& r : rs) print_target(stdout, r);
  const TargetResult *dev = find(rs, "device"), *flo = find(rs, "floor");
  auto ratio_text = [](std::optional<double> x) { return x ? fmt::format("{:.2f}x", *x) : "-"; };
  fmt::print("\n== comparison: p50 in us (ratio = device / floor)\n  {:<16}", "op");
  for (const auto& r : rs) fmt::print(" {:>10}", r.name);
  fmt::print("{}\n", dev && flo ? fmt::format(" {:>12}", "device/floor") : "");
  for (Op op : kCompareOps) {
    if (std::ranges::none_of(rs, [op](const TargetResult& r) { return r.hist[op].count() > 0; })) continue;
    fmt::print("  {:<16}", label(op, false));
    for (const auto& r : rs) fmt::print(" {:>10}", r.hist[op].count() ? us(r.hist[op].percentile(0.5)) : "-");
    if (dev && flo)
      fmt::print(" {:>12}", ratio_text(ratio(double(dev->hist[op].percentile(0.5)),
                                             double(flo->hist[op].percentile(0.5)))));
    fmt::print("\n");
  }
  fmt::print("  throughput (ratio = device / floor):\n");
  for (const Throughput& t : kThroughputs) {
    fmt::print("  {:<16}", t.label);
    for (const auto& r : rs) fmt::print(" {:>10.0f}", t.f(r));
    fmt::print("{}\n", dev && flo ? fmt::format(" {:>12}", ratio_text(ratio(t.f(*dev), t.f(*flo)))) : "");
  }
  std::fflush(stdout);
}

using Json = nlohmann::ordered_json;

Json hist_json(const TargetResult& r, const LogHistogram* hists, bool fin) {
  Json ops = Json::object();
  for (int op = 0; op < kOpCount; ++op) {
    const LogHistogram& h = hists[op];
    if (h.count() == 0) continue;
    auto rate = ops_per_s(r, Op(op), h, fin);
    ops[kOpNames[op]] = {{"count", h.count()}, {"ops_per_s", rate ? Json(*rate) : Json()},
                         {"p50_ns", h.percentile(0.5)}, {"p99_ns", h.percentile(0.99)},
                         {"max_ns", h.max()}, {"min_ns", h.min()}, {"mean_ns", h.mean()}};
  }
  return ops;
}

std::string write_json(const std::string& path, const std::vector<TargetResult>& rs, const Options& o,
                       const Machine& m) {
  Json j;
  j["machine"] = {{"cpu_model", m.cpu}, {"cores", m.cores}, {"kernel", m.kernel}, {"hostname", m.host}};
  j["options"] = {{"master", o.master}, {"threads", o.w.threads}, {"groups", o.w.groups},
                  {"duration_s", double(o.w.duration_ns) / 1e9}, {"message_size", o.w.message_size},
                  {"delay_ms", o.w.delay_ms}, {"final", o.final_mode}, {"flush", o.flush},
                  {"rounds", o.rounds}, {"targets", o.targets}};
  j["latency_unit"] = "ns, wall clock (CLOCK_MONOTONIC)";
  j["targets"] = Json::array();
  for (const TargetResult& r : rs) {
    Json t = {{"name", r.name}, {"kind", r.kind}, {"description", r.description}, {"ok", r.ok},
              {"error", r.error}, {"rounds", r.rounds}, {"phase1_s", r.phase1_s}, {"phase2_s", r.phase2_s},
              {"final_s", r.final_s}, {"has_delay", r.has_delay}, {"flush_method", r.flush_method},
              {"ops", hist_json(r, r.hist, false)}, {"final_ops", hist_json(r, r.final_hist, true)}};
    const DeliveryCheck& c = r.check;
    t["messages"] = {{"written", c.expected}, {"delivered", c.delivered}, {"drained", r.drained},
                     {"missing", c.missing}, {"missing_are_revoked", r.revoked_at_end},
                     {"duplicates", r.counter[kDuplicates]}, {"corrupt", r.counter[kCorrupt]},
                     {"unexpected", c.unexpected + r.out_of_range}, {"write_full_retries", r.counter[kWriteFull]},
                     {"write_errors", r.counter[kWriteErrors]}, {"read_errors", r.counter[kReadErrors]},
                     {"other_errors", r.counter[kOtherErrors]}, {"exactly_once", r.exactly_once()}};
    for (const Throughput& x : kThroughputs) t["throughput"][x.key] = x.f(r);
    t["handoff"] = {{"awake_calls", r.awake_calls}, {"all_woken_ns", r.wake_all_ns}};
    t["per_round"] = {{"write_p1_p50_ns", r.round_write_p50}, {"read_hit_p1_p50_ns", r.round_read_p50},
                      {"delivered_per_s_p1", r.round_delivered_per_s}};
    j["targets"].push_back(std::move(t));
  }
  const TargetResult *dev = find(rs, "device"), *flo = find(rs, "floor");
  Json& ratios = j["ratios_device_over_floor"];
  for (Op op : kCompareOps)
    if (auto x = dev && flo ? ratio(double(dev->hist[op].percentile(0.5)), double(flo->hist[op].percentile(0.5)))
                            : std::nullopt)
      ratios["p50"][kOpNames[op]] = *x;
  for (const Throughput& x : kThroughputs)
    if (dev && flo) ratios["throughput"][x.key] = ratio(x.f(*dev), x.f(*flo)) ? Json(*ratio(x.f(*dev), x.f(*flo))) : Json();
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  f.close();
  return f ? "" : path + ": " + std::strerror(errno);
}

int run(int argc, char** argv) {
  Options o;
  if (auto rc = parse(argc, argv, o)) return *rc;
  signal(SIGPIPE, SIG_IGN);
  FloorServer floor;
  std::string floor_master = o.floor_master, floor_error;
  if (std::ranges::find(o.targets, "floor") != o.targets.end() && floor_master.empty()) {
    std::string bin = o.floor_bin.empty()
        ? (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "synchmess-echo-floor").string() : o.floor_bin;
    floor_error = floor.start(bin, o.floor_threads);
    if (floor_error.empty()) floor_master = floor.master();
    fmt::print(stderr, "synchmess-bench: echo floor{}\n",
               floor_error.empty() ? " mounted, master " + floor_master : ": " + floor_error);
  }
  std::vector<TargetResult> results(o.targets.size());
  for (unsigned round = 0; round < o.rounds; ++round) {
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      const std::string& name = o.targets[i];
      TargetResult& r = results[i];
      r.name = name;
      if (name == "floor" && floor_master.empty()) {
        r.kind = "synchmess";
        r.ok = false;
        r.error = "echo floor not available: " + floor_error;
        ++r.rounds;
      } else {
        run_target(*make_transport(name, name == "floor" ? floor_master : o.master, o.w), o.w, o.progress, &r);
      }
      fmt::print(stderr, "synchmess-bench: {} round {}: {}; write p50 {:.1f} us, delivered {:.0f}/s "
                 "(phase 1), exactly-once {}\n", name, round + 1, r.ok ? "ok" : "FAILED: " + r.error,
                 double(r.round_write_p50.empty() ? 0 : r.round_write_p50.back()) / 1e3,
                 r.round_delivered_per_s.empty() ? 0.0 : r.round_delivered_per_s.back(),
                 r.exactly_once() ? "PASS" : "FAIL");
    }
  }
  Machine machine;
  print_report(results, o, machine);
  int rc = std::ranges::all_of(results, [](const TargetResult& r) { return r.ok && r.exactly_once(); }) ? 0 : 1;
  if (!o.json_path.empty()) {
    if (std::string err = write_json(o.json_path, results, o, machine); !err.empty()) {
      fmt::print(stderr, "synchmess-bench: json: {}\n", err);
      rc = 1;
    }
  }
  return rc;
}

}  // namespace
}  // namespace synchmess::bench

int main(int argc, char** argv) { return synchmess::bench::run(argc, argv); }
