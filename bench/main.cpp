// main.cpp - synchmess-bench: options (CLI11), the echo floors' lifetime, the
// pairs loop and the target loop (rounds interleave the targets); report.cpp
// prints.
//
// Exit status: 0 when every target ran and passed the exactly-once check
// and every write+read pair read back its message,
// 1 otherwise, 2 for a bad command line.
#include <signal.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "bench.h"
#include "sm_codec.h"
#include "synchmess_interface.h"

namespace synchmess::bench {
namespace {

// Returns an exit code to stop with, or nullopt to run.
std::optional<int> parse(int argc, char** argv, Options& o) {
  CLI::App app("The original SynchMess benchmark (producer + consumer process, 8+8 threads,\n"
               "64 groups, 2 phases) against any device speaking the ABI, plus baselines,\n"
               "with wall-clock latency percentiles.  See bench/README.md.", "synchmess-bench");
  app.option_defaults()->always_capture_default();
  double duration_s = 30;
  bool add_floor = false, quick = false;
  app.add_option("--master", o.master, "master device of the target under test");
  auto* targets = app.add_option("--targets", o.targets, "comma list, run in this order")
                      ->delimiter(',')->check(CLI::IsMember({"device", "fast", "floor", "floor1", "pipe", "mqueue"}));
  app.add_flag("--floor", add_floor, "add both echo floors to an explicit --targets list");
  app.add_option("--floor-master", o.floor_master, "use a multi-threaded echo floor already mounted there");
  app.add_option("--floor1-master", o.floor1_master, "use a single-threaded echo floor already mounted there");
  app.add_option("--floor-bin", o.floor_bin, "echo floor binary (default: next to this executable)");
  app.add_option("--floor-threads", o.floor_threads, "the multi-threaded floor's worker threads")
      ->check(CLI::Range(2u, 64u));
  bool no_pairs = false, pair_seconds_set = false;
  app.add_option("--pairs", o.pair_clients, "client thread counts for the write+read pairs")
      ->delimiter(',')->check(CLI::Range(1u, unsigned(MAX_NUM_GROUPS)));
  app.add_flag("--no-pairs", no_pairs, "skip the write+read pairs");
  app.add_option("--pair-rounds", o.pair_rounds, "rounds of pairs (targets alternate within each)")
      ->check(CLI::PositiveNumber);
  app.add_option("--pair-seconds", o.pair_seconds, "seconds per target, client count and round (--quick: 0.5)")
      ->check(CLI::Range(0.01, 3600.0))->each([&](const std::string&) { pair_seconds_set = true; });
  app.add_option("--pair-size", o.pair_size, "bytes per message of a pair")->check(CLI::Range(1, 65536));
  app.add_option("--threads", o.w.threads, "producers = consumers per process")->check(CLI::Range(1u, kMaxThreads));
  app.add_option("--groups", o.w.groups, "groups 1..N")->check(CLI::Range(1, MAX_NUM_GROUPS));
  auto* duration = app.add_option("--duration", duration_s, "seconds per phase")
                       ->check(CLI::PositiveNumber & CLI::Range(0.0, 86400.0));
  app.add_flag("--quick", quick, "--duration 3")->excludes(duration);
  app.add_option("--message-size", o.w.message_size, "bytes per message (the codec's trailer is 40)")
      ->check(CLI::Range(std::size_t(SMC_TRAILER_SIZE), std::size_t(65536)));
  app.add_option("--delay-ms", o.w.delay_ms, "phase 2 send delay");
  app.add_option("--flush", o.w.flush, "auto: fsync, then IOCTL_FLUSH_DELAYED_MESSAGES once fsync "
                 "fails with EINVAL (CUSE)")->check(CLI::IsMember({"auto", "fsync", "ioctl"}));
  app.add_option("--final", o.w.final_mode, "flush: flush, revoke, drain, reset delay; revoke: "
                 "skip the flush, delayed messages are reported missing (revoked)")
      ->check(CLI::IsMember({"flush", "revoke"}));
  app.add_option("--rounds", o.rounds, "repeat the target list, interleaved; figures merge all rounds")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", o.json_path, "also write every figure (ns) as JSON");
  app.add_flag("--no-progress", o.no_progress, "no progress line on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const char* f : {"floor", "floor1"})
    if (add_floor && targets->count() && std::ranges::find(o.targets, f) == o.targets.end()) o.targets.push_back(f);
  o.w.duration_ns = std::uint64_t((quick ? 3.0 : duration_s) * 1e9);
  if (quick && !pair_seconds_set) o.pair_seconds = 0.5;
  if (no_pairs) o.pair_clients.clear();
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
    int i = 0, status;
    if (pid > 0 && kill(pid, SIGTERM) == 0)
      while (waitpid(pid, &status, WNOHANG) != pid && ++i < 500) usleep(10'000);
    if (i == 500) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    if (!dir.empty() && is_fuse_mount(dir)) umount2(dir.c_str(), MNT_DETACH);
    if (!dir.empty()) rmdir(dir.c_str());
  }
};

int run(int argc, char** argv) {
  Options o;
  if (auto rc = parse(argc, argv, o)) return *rc;
  signal(SIGPIPE, SIG_IGN);
  // The bare servers: "floor" multi-threaded (libfuse's mt loop), "floor1"
  // single-threaded (fuse_session_loop).
  FloorServer floors[2];
  std::string floor_masters[2] = {o.floor_master, o.floor1_master}, floor_errors[2];
  const char* floor_names[2] = {"floor", "floor1"};
  for (int f = 0; f < 2; ++f) {
    if (std::ranges::find(o.targets, floor_names[f]) == o.targets.end() || !floor_masters[f].empty()) continue;
    std::string bin = o.floor_bin.empty()
        ? (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "synchmess-echo-floor").string() : o.floor_bin;
    floor_errors[f] = floors[f].start(bin, f == 0 ? o.floor_threads : 1);
    if (floor_errors[f].empty()) floor_masters[f] = floors[f].master();
    fmt::print(stderr, "synchmess-bench: echo {}{}\n", floor_names[f],
               floor_errors[f].empty() ? " mounted, master " + floor_masters[f] : ": " + floor_errors[f]);
  }
  auto master_of = [&](const std::string& name) {
    return name == "floor" ? floor_masters[0] : name == "floor1" ? floor_masters[1] : o.master;
  };
  auto unavailable = [&](const std::string& name) -> std::string {
    int f = name == "floor" ? 0 : name == "floor1" ? 1 : -1;
    if (name == "fast" && !fast_path_loaded()) return "libsynchmess-fast.so is not loaded: run under synchmess-fast";
    return f >= 0 && floor_masters[f].empty() ? "echo " + name + " not available: " + floor_errors[f] : "";
  };
  // Pairs: for each round, each client count, the targets in turn (the
  // baselines and the fast path too; the install row for the ABI servers).
  std::vector<PairsResult> pairs;
  std::vector<std::string> abi_targets;
  for (const auto& t : o.targets)
    if (t == "device" || t == "floor" || t == "floor1") abi_targets.push_back(t);
  for (unsigned c : o.pair_clients)
    for (const auto& t : o.targets) pairs.push_back({.target = t, .clients = c});
  if (!o.pair_clients.empty())
    for (const auto& t : abi_targets) pairs.push_back({.target = t, .clients = 0});  // install vs plain ioctl
  for (unsigned round = 0; round < o.pair_rounds && !pairs.empty(); ++round) {
    for (PairsResult& p : pairs) {
      if (!p.error.empty()) continue;
      if (p.error = unavailable(p.target); !p.error.empty()) continue;
      LogHistogram h;
      if (p.clients == 0) {
        p.error = run_ioctls(master_of(p.target), std::uint64_t(o.pair_seconds * 1e9), &h, &p.plain);
        p.pairs += h.count();
      } else {
        p.error = run_pairs(p.target, master_of(p.target), p.clients, o.pair_size,
                            std::uint64_t(o.pair_seconds * 1e9), &h, &p.pairs);
      }
      p.hist.merge(h);
      p.seconds += o.pair_seconds;
      p.round_p50.push_back(h.percentile(0.5));
      if (!o.no_progress)
        fmt::print(stderr, "synchmess-bench: pairs round {}, {}, {}: p50 {:.1f} us{}\n", round + 1,
                   p.clients ? fmt::format("{} client(s)", p.clients) : std::string("install"), p.target,
                   double(h.percentile(0.5)) / 1e3, p.error.empty() ? "" : ", " + p.error);
    }
  }
  std::vector<TargetResult> results(o.targets.size());
  for (unsigned round = 0; round < o.rounds; ++round) {
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      const std::string& name = o.targets[i];
      TargetResult& r = results[i];
      r.name = name;
      if (std::string why = unavailable(name); !why.empty())
        r.ok = false, r.error = why, r.kind = "synchmess", ++r.rounds;
      else
        run_target(*make_transport(name, master_of(name), o.w), o.w, !o.no_progress, &r);
      fmt::print(stderr, "synchmess-bench: {} round {}: {}; write p50 {:.1f} us, delivered {:.0f}/s "
                 "(phase 1), exactly-once {}\n", name, round + 1, r.ok ? "ok" : "FAILED: " + r.error,
                 double(r.round_write_p50.empty() ? 0 : r.round_write_p50.back()) / 1e3,
                 r.round_delivered_per_s.empty() ? 0.0 : r.round_delivered_per_s.back(),
                 r.exactly_once() ? "PASS" : "FAIL");
    }
  }
  print_report(results, pairs, o);
  int rc = std::ranges::all_of(results, [](const TargetResult& r) { return r.ok && r.exactly_once(); }) &&
                   std::ranges::all_of(pairs, [](const PairsResult& p) { return p.error.empty(); })
               ? 0 : 1;
  std::string err = o.json_path.empty() ? "" : write_json(o.json_path, results, pairs, o);
  if (!err.empty()) fmt::print(stderr, "synchmess-bench: json: {}\n", err);
  return err.empty() ? rc : 1;
}

}  // namespace
}  // namespace synchmess::bench

int main(int argc, char** argv) { return synchmess::bench::run(argc, argv); }
