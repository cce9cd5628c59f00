// report.cpp - the tables on stdout and the JSON file (see bench.h and
// README.md "Reading the figures").
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ranges>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bench.h"

namespace synchmess::bench {
namespace {

std::string us(std::uint64_t ns) { return fmt::format("{:.1f}", double(ns) / 1e3); }

const char* label(Op op, bool final_step) {
  static constexpr const char* kLabels[kOpCount] = {
      "install", "access+open", "write        p1", "read hit     p1", "read empty   p1", "write delayd p2",
      "read hit     p2", "read empty   p2", "flush        p2", "set delay", "in SLEEP", "AWAKE->running",
      "AWAKE call", "revoke", "drain read", "end-to-end   p1", "end-to-end   p2"};
  if (!final_step) return kLabels[op];
  return op == kFlush ? "final flush" : op == kRevoke ? "final revoke" : op == kSetDelay ? "reset delay 0" : "drain read";
}

constexpr Op kTableOrder[] = {kInstall, kOpen, kWrite1, kReadHit1, kReadEmpty1, kDeliver1, kSetDelay, kSleep,
                              kAwake, kHandoff, kWrite2, kReadHit2, kReadEmpty2, kDeliver2, kFlush};
constexpr Op kFinalOrder[] = {kFlush, kRevoke, kDrainRead, kSetDelay};
constexpr Op kCompareOps[] = {kWrite1, kReadHit1, kReadEmpty1, kDeliver1, kWrite2, kReadHit2,
                              kFlush, kAwake, kHandoff, kInstall, kSetDelay};

// Calls per second of the phase the op belongs to; nullopt for the others.
std::optional<double> ops_per_s(const TargetResult& r, Op op, const LogHistogram& h, bool final_step) {
  double s = final_step ? 0 : op == kWrite1 || op == kReadHit1 || op == kReadEmpty1 ? r.phase1_s
             : op == kWrite2 || op == kReadHit2 || op == kReadEmpty2 || op == kFlush ? r.phase2_s : 0;
  return s > 0 && h.count() ? std::optional(double(h.count()) / s) : std::nullopt;
}

struct Throughput {
  const char *label, *key;
  double (*f)(const TargetResult&);
};
constexpr Throughput kThroughputs[] = {
    {"writes/s p1", "writes_per_s_p1", [](const TargetResult& r) { return r.per_s_phase1(r.hist[kWrite1].count()); }},
    {"delivered/s p1", "delivered_per_s_p1", [](const TargetResult& r) { return r.delivered_per_s_phase1(); }},
    {"all ops/s p1", "all_ops_per_s_p1", [](const TargetResult& r) {
       return r.per_s_phase1(r.hist[kWrite1].count() + r.hist[kReadHit1].count() + r.hist[kReadEmpty1].count());
     }},
};

void print_target(const TargetResult& r) {
  fmt::print("\n== {} ({}): {}\n", r.name, r.kind, r.description);
  if (!r.ok) fmt::print("  FAILED: {}\n", r.error);
  fmt::print("  rounds {}, phase 1 {:.2f} s, phase 2 {:.2f} s, final {:.3f} s{}\n", r.rounds, r.phase1_s,
             r.phase2_s, r.final_s, r.has_delay ? ", flush via " + (r.flush_method.empty() ? "-" : r.flush_method)
                                                : std::string(", no delay/flush (baseline)"));
  constexpr const char* kRow = "  {:<16} {:>10} {:>11} {:>10} {:>10} {:>11}\n";
  fmt::print(kRow, "op (wall clock)", "count", "ops/s", "p50 us", "p99 us", "max us");
  auto row = [&](Op op, const LogHistogram& h, bool fin) {
    auto rate = ops_per_s(r, op, h, fin);
    if (h.count())
      fmt::print(kRow, label(op, fin), h.count(), rate ? fmt::format("{:.0f}", *rate) : "-",
                 us(h.percentile(0.5)), us(h.percentile(0.99)), us(h.max()));
  };
  for (Op op : kTableOrder) row(op, r.hist[op], false);
  for (Op op : kFinalOrder) row(op, r.final_hist[op], true);
  const DeliveryCheck& c = r.check;
  fmt::print("  messages: written {}, delivered {} (of which {} in the final drain), missing {}{}, duplicates {}, "
             "corrupt {}, unexpected {}\n", c.expected, c.delivered, r.drained, c.missing,
             r.revoked_at_end && c.missing ? " (revoked at the end, not lost)" : "", r.counter[kDuplicates],
             r.counter[kCorrupt], c.unexpected);
  fmt::print("  full-group retries {}, write errors {}, read errors {}, other errors {}\n", r.counter[kWriteFull],
             r.counter[kWriteErrors], r.counter[kReadErrors], r.counter[kOtherErrors]);
  fmt::print("  exactly-once after the final drain: {}\n", r.exactly_once() ? "PASS" : "FAIL");
  if (r.hist[kHandoff].count())
    fmt::print("  hand-off: {} sleepers woken with {} AWAKE calls; all sleepers of a round running {} us after "
               "that round's first successful AWAKE{}\n", r.hist[kHandoff].count(), r.awake_calls,
               us(r.wake_all_ns), r.rounds > 1 ? " (worst round)" : "");
  auto list = [](const std::vector<std::uint64_t>& v) { return fmt::format(" {}", fmt::join(v | std::views::transform(us), " ")); };
  if (r.rounds > 1)
    fmt::print("  per round p50 write p1 (us):{}; read hit p1 (us):{}\n", list(r.round_write_p50), list(r.round_read_p50));
}

// f(device) / f(the better bare server): the lower of floor and floor1 for
// times, the higher for rates; nullopt unless the device and a floor ran
// and the figures are positive.
template <typename F>
std::optional<double> ratio(const std::vector<TargetResult>& rs, F f, bool higher_is_better = false) {
  auto dev = std::ranges::find_if(rs, [&](auto& r) { return r.ok && r.name == "device"; });
  if (dev == rs.end() || f(*dev) <= 0) return std::nullopt;
  std::optional<double> best;
  for (const auto& r : rs)
    if (r.ok && (r.name == "floor" || r.name == "floor1") && f(r) > 0)
      best = !best ? f(r) : higher_is_better ? std::max(*best, f(r)) : std::min(*best, f(r));
  if (!best) return std::nullopt;
  return f(*dev) / *best;
}
bool have_pair(const std::vector<TargetResult>& rs) { return ratio(rs, [](auto&) { return 1.0; }).has_value(); }
auto p50(Op op) { return [op](const TargetResult& r) { return double(r.hist[op].percentile(0.5)); }; }

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


// The device's pairs p50 over the better bare server's, per client count.
std::optional<double> pairs_ratio(const std::vector<PairsResult>& ps, unsigned clients) {
  std::optional<double> dev, best;
  for (const auto& p : ps) {
    if (p.clients != clients || !p.error.empty() || p.hist.count() == 0) continue;
    double v = double(p.hist.percentile(0.5));
    if (p.target == "device") dev = v;
    else if (p.target == "floor" || p.target == "floor1") best = best ? std::min(*best, v) : v;
  }
  return dev && best ? std::optional(*dev / *best) : std::nullopt;
}

void print_pairs(const std::vector<PairsResult>& ps, const Options& o) {
  if (ps.empty()) return;
  std::vector<std::string> targets;
  std::vector<unsigned> clients;
  for (const auto& p : ps) {
    if (std::ranges::find(targets, p.target) == targets.end()) targets.push_back(p.target);
    if (p.clients && std::ranges::find(clients, p.clients) == clients.end()) clients.push_back(p.clients);
  }
  fmt::print("\n== write+read pairs: {} B, each client thread on its own group; p50 per pair in us; "
             "{} rounds of {:.1f} s per target and client count, alternating\n  {:<8}",
             o.pair_size, o.pair_rounds, o.pair_seconds, "clients");
  for (const auto& t : targets) fmt::print(" {:>10}", t);
  fmt::print(" {:>12} {:>14}\n", "device/bare", "pairs/s device");
  for (unsigned c : clients) {
    fmt::print("  {:<8}", c);
    const PairsResult* dev = nullptr;
    for (const auto& t : targets) {
      auto it = std::ranges::find_if(ps, [&](auto& p) { return p.clients == c && p.target == t; });
      if (it != ps.end() && it->target == "device") dev = &*it;
      fmt::print(" {:>10}", it == ps.end() || !it->error.empty() || !it->hist.count() ? "-" : us(it->hist.percentile(0.5)));
    }
    auto x = pairs_ratio(ps, c);
    fmt::print(" {:>12} {:>14}\n", x ? fmt::format("{:.2f}x", *x) : "-",
               dev && dev->seconds > 0 ? fmt::format("{:.0f}", double(dev->pairs) / dev->seconds) : "-");
  }
  // Install against a plain ioctl, one client.
  fmt::print("  {:<8}", "ioctls");
  for (const auto& t : targets) fmt::print(" {:>21}", t);
  fmt::print("\n  {:<8}", "p50 us");
  for (const auto& t : targets) {
    auto it = std::ranges::find_if(ps, [&](auto& p) { return p.clients == 0 && p.target == t; });
    bool ok = it != ps.end() && it->error.empty() && it->hist.count() && it->plain.count();
    fmt::print(" {:>21}", ok ? fmt::format("{} / {} = {:.2f}x", us(it->hist.percentile(0.5)),
                                           us(it->plain.percentile(0.5)),
                                           double(it->hist.percentile(0.5)) / double(it->plain.percentile(0.5)))
                             : "-");
  }
  fmt::print("  (install / plain ioctl: IOCTL_INSTALL_GROUP of an installed group / IOCTL_AWAKE, no sleeper)\n");
  for (const auto& p : ps)
    if (!p.error.empty()) fmt::print("  {} with {} client(s) FAILED: {}\n", p.target, p.clients, p.error);
  for (const auto& p : ps)
    if (p.round_p50.size() > 1)
      fmt::print("  per round p50 (us), {}, {}:{}\n", p.clients ? fmt::format("{} client(s)", p.clients) : "install", p.target,
                 fmt::format(" {}", fmt::join(p.round_p50 | std::views::transform(us), " ")));
}

// The goals of the daemon on FUSE (README "Benchmarks"), judged on ratios
// of this run only: PASS/FAIL per line, "-" when a figure is missing.
void print_goals(const std::vector<TargetResult>& rs, const std::vector<PairsResult>& ps, const Options& o) {
  if (!have_pair(rs) && std::ranges::none_of(ps, [](auto& p) { return p.target == "device"; })) return;
  fmt::print("\n== goals (device / the better bare server, this run only)\n");
  auto line = [](const std::string& what, std::optional<double> x, double limit, bool at_least) {
    const char* verdict = !x ? "-" : (at_least ? *x >= limit : *x <= limit) ? "PASS" : "FAIL";
    fmt::print("  {:<44} {:>8} {} {:.2f}x  {}\n", what, x ? fmt::format("{:.2f}x", *x) : "-", at_least ? ">=" : "<=",
               limit, verdict);
  };
  for (unsigned c : o.pair_clients)
    if (std::ranges::any_of(ps, [c](auto& p) { return p.clients == c; }))
      line(fmt::format("pairs p50, {} client(s)", c), pairs_ratio(ps, c), 1.10, false);
  if (have_pair(rs)) {
    line("8+8 delivered/s p1", ratio(rs, kThroughputs[1].f, true), 1.0, true);
    for (Op op : {kWrite1, kReadHit1, kFlush, kAwake})
      line(fmt::format("8+8 {} p50", label(op, false)), ratio(rs, p50(op)), 1.15, false);
    line("8+8 install p50 / bare plain ioctl", ratio(rs, p50(kInstall)), 2.0, false);
  }
  auto dev = std::ranges::find_if(ps, [](auto& p) { return p.clients == 0 && p.target == "device"; });
  if (dev != ps.end() && dev->error.empty() && dev->hist.count() && dev->plain.count())
    line("install alone p50 / the device's plain ioctl",
         double(dev->hist.percentile(0.5)) / double(dev->plain.percentile(0.5)), 2.0, false);
}

// The fast path against the others: a / b of a figure of two targets that
// both ran (nullopt otherwise).
std::optional<double> pair_p50_ratio(const std::vector<PairsResult>& ps, unsigned clients, const char* a,
                                     const char* b) {
  auto find = [&](const char* t) {
    auto it = std::ranges::find_if(ps, [&](auto& p) { return p.clients == clients && p.target == t; });
    return it != ps.end() && it->error.empty() && it->hist.count() ? double(it->hist.percentile(0.5)) : 0.0;
  };
  double x = find(a), y = find(b);
  return x > 0 && y > 0 ? std::optional(x / y) : std::nullopt;
}
std::optional<double> delivered_ratio(const std::vector<TargetResult>& rs, const char* a, const char* b) {
  auto find = [&](const char* t) {
    auto it = std::ranges::find_if(rs, [&](auto& r) { return r.ok && r.exactly_once() && r.name == t; });
    return it != rs.end() ? it->delivered_per_s_phase1() : 0.0;
  };
  double x = find(a), y = find(b);
  return x > 0 && y > 0 ? std::optional(x / y) : std::nullopt;
}

void print_fast(const std::vector<TargetResult>& rs, const std::vector<PairsResult>& ps, const Options& o) {
  if (std::ranges::find(o.targets, "fast") == o.targets.end()) return;
  auto x = [](std::optional<double> v) { return v ? fmt::format("{:.3f}x", *v) : std::string("-"); };
  fmt::print("\n== the fast path (libsynchmess-fast.so) against the others\n");
  for (unsigned c : o.pair_clients)
    fmt::print("  write+read pair p50, {} client(s): fast/pipe {}, fast/mqueue {}, fast/device {}\n", c,
               x(pair_p50_ratio(ps, c, "fast", "pipe")), x(pair_p50_ratio(ps, c, "fast", "mqueue")),
               x(pair_p50_ratio(ps, c, "fast", "device")));
  if (!rs.empty())
    fmt::print("  delivered msgs/s phase 1 ({} producer + {} consumer threads): fast/pipe {}, fast/mqueue {}, "
               "fast/device {}\n", o.w.threads, o.w.threads, x(delivered_ratio(rs, "fast", "pipe")),
               x(delivered_ratio(rs, "fast", "mqueue")), x(delivered_ratio(rs, "fast", "device")));
  // The fast path's goals (README "The fast path"), on this run's ratios
  // only; each line appears in the run whose shape it is about.
  auto line = [](const std::string& what, std::optional<double> v, double limit, bool at_least) {
    const char* verdict = !v ? "-" : (at_least ? *v >= limit : *v <= limit) ? "PASS" : "FAIL";
    fmt::print("  goal: {:<48} {:>8} {} {:.2f}x  {}\n", what, v ? fmt::format("{:.3f}x", *v) : "-",
               at_least ? ">=" : "<=", limit, verdict);
  };
  if (std::ranges::find(o.pair_clients, 1u) != o.pair_clients.end() && !ps.empty())
    line("pair p50, 1 thread, fast / pipe", pair_p50_ratio(ps, 1, "fast", "pipe"), 0.5, false);
  if (!rs.empty() && o.w.threads == 8)
    line("8+8 delivered/s, fast / devices", delivered_ratio(rs, "fast", "device"), 10.0, true);
  if (!rs.empty() && o.w.threads == 1 && o.w.groups == 1)
    line(fmt::format("1+1 delivered/s ({} B), fast / pipe", o.w.message_size), delivered_ratio(rs, "fast", "pipe"),
         5.0, true);
}

}  // namespace

void print_report(const std::vector<TargetResult>& rs, const std::vector<PairsResult>& pairs, const Options& o) {
  Machine m;
  fmt::print("synchmess-bench: {} CPU(s) {}, {}\n", m.cores, m.cpu, m.kernel);
  fmt::print("workload: {} producer + {} consumer threads, {} groups, {} B messages, {:.1f} s per phase, "
             "delay {} ms, final {}, rounds {}\n", o.w.threads, o.w.threads, o.w.groups, o.w.message_size,
             double(o.w.duration_ns) / 1e9, o.w.delay_ms, o.w.final_mode, o.rounds);
  fmt::print("latencies are wall clock (CLOCK_MONOTONIC) per call; p1/p2 = phase 1/2\n");
  for (const auto& r : rs) print_target(r);
  bool pair = have_pair(rs);
  auto ratio_text = [&](auto f, bool higher_is_better = false) {
    auto x = ratio(rs, f, higher_is_better);
    return !pair ? "" : fmt::format(" {:>12}", x ? fmt::format("{:.2f}x", *x) : "-");
  };
  fmt::print("\n== comparison: p50 in us (ratio = device / the better bare server: floor = libfuse "
             "multi-threaded, floor1 = single-threaded)\n  {:<16}", "op");
  for (const auto& r : rs) fmt::print(" {:>10}", r.name);
  fmt::print("{}\n", pair ? fmt::format(" {:>12}", "device/bare") : "");
  for (Op op : kCompareOps) {
    if (std::ranges::none_of(rs, [op](const TargetResult& r) { return r.hist[op].count() > 0; })) continue;
    fmt::print("  {:<16}", label(op, false));
    for (const auto& r : rs) fmt::print(" {:>10}", r.hist[op].count() ? us(r.hist[op].percentile(0.5)) : "-");
    fmt::print("{}\n", ratio_text(p50(op)));
  }
  fmt::print("  throughput (ratio = device / the better bare server):\n");
  for (const Throughput& t : kThroughputs) {
    fmt::print("  {:<16}", t.label);
    for (const auto& r : rs) fmt::print(" {:>10.0f}", t.f(r));
    fmt::print("{}\n", ratio_text(t.f, true));
  }
  print_pairs(pairs, o);
  print_goals(rs, pairs, o);
  print_fast(rs, pairs, o);
  std::fflush(stdout);
}

std::string write_json(const std::string& path, const std::vector<TargetResult>& rs,
                       const std::vector<PairsResult>& pairs, const Options& o) {
  using Json = nlohmann::ordered_json;
  auto opt = [](std::optional<double> x) { return x ? Json(*x) : Json(); };
  auto hists = [&](const TargetResult& r, const LogHistogram* hs, bool fin) {
    Json ops = Json::object();
    for (int op = 0; op < kOpCount; ++op)
      if (const LogHistogram& h = hs[op]; h.count())
        ops[kOpNames[op]] = {{"count", h.count()}, {"ops_per_s", opt(ops_per_s(r, Op(op), h, fin))},
                             {"p50_ns", h.percentile(0.5)}, {"p99_ns", h.percentile(0.99)}, {"max_ns", h.max()},
                             {"min_ns", h.min()}, {"mean_ns", h.mean()}};
    return ops;
  };
  Machine m;
  Json j = {{"machine", {{"cpu_model", m.cpu}, {"cores", m.cores}, {"kernel", m.kernel}, {"hostname", m.host}}},
            {"options", {{"master", o.master}, {"threads", o.w.threads}, {"groups", o.w.groups},
                         {"duration_s", double(o.w.duration_ns) / 1e9}, {"message_size", o.w.message_size},
                         {"delay_ms", o.w.delay_ms}, {"final", o.w.final_mode}, {"flush", o.w.flush},
                         {"rounds", o.rounds}, {"targets", o.targets}}},
            {"latency_unit", "ns, wall clock (CLOCK_MONOTONIC)"}, {"targets", Json::array()}};
  for (const TargetResult& r : rs) {
    const DeliveryCheck& c = r.check;
    Json t = {{"name", r.name}, {"kind", r.kind}, {"description", r.description}, {"ok", r.ok},
              {"error", r.error}, {"rounds", r.rounds}, {"phase1_s", r.phase1_s}, {"phase2_s", r.phase2_s},
              {"final_s", r.final_s}, {"has_delay", r.has_delay}, {"flush_method", r.flush_method},
              {"ops", hists(r, r.hist, false)}, {"final_ops", hists(r, r.final_hist, true)},
              {"messages", {{"written", c.expected}, {"delivered", c.delivered}, {"drained", r.drained},
                            {"missing", c.missing}, {"missing_are_revoked", r.revoked_at_end},
                            {"duplicates", r.counter[kDuplicates]}, {"corrupt", r.counter[kCorrupt]},
                            {"unexpected", c.unexpected},
                            {"write_full_retries", r.counter[kWriteFull]}, {"write_errors", r.counter[kWriteErrors]},
                            {"read_errors", r.counter[kReadErrors]}, {"other_errors", r.counter[kOtherErrors]},
                            {"exactly_once", r.exactly_once()}}}};
    for (const Throughput& x : kThroughputs) t["throughput"][x.key] = x.f(r);
    t["handoff"] = {{"awake_calls", r.awake_calls}, {"all_woken_ns", r.wake_all_ns}};
    t["per_round"] = {{"write_p1_p50_ns", r.round_write_p50}, {"read_hit_p1_p50_ns", r.round_read_p50},
                      {"delivered_per_s_p1", r.round_delivered_per_s}};
    j["targets"].push_back(std::move(t));
  }
  Json& ratios = j["ratios_device_over_best_bare"];  // null without the device and a floor
  for (Op op : kCompareOps)
    if (auto x = ratio(rs, p50(op))) ratios["p50"][kOpNames[op]] = *x;
  for (const Throughput& x : have_pair(rs) ? kThroughputs : std::span<const Throughput>())
    ratios["throughput"][x.key] = opt(ratio(rs, x.f, true));
  j["pairs"] = Json::array();
  for (const PairsResult& p : pairs)
    j["pairs"].push_back({{"target", p.target}, {"clients", p.clients}, {"error", p.error}, {"pairs", p.pairs},
                          {"seconds", p.seconds}, {"p50_ns", p.hist.percentile(0.5)},
                          {"p99_ns", p.hist.percentile(0.99)}, {"round_p50_ns", p.round_p50},
                          {"plain_ioctl_p50_ns", p.plain.percentile(0.5)}});
  for (unsigned c : o.pair_clients)
    if (auto x = pairs_ratio(pairs, c)) ratios["pairs_p50"][std::to_string(c)] = *x;
  if (auto x = pairs_ratio(pairs, 0)) ratios["install_alone_p50"] = *x;  // clients = 0: the ioctl rows
  Json& fast = j["ratios_fast"];  // null without the fast target
  for (const char* other : {"pipe", "mqueue", "device"}) {
    for (unsigned c : o.pair_clients)
      if (auto x = pair_p50_ratio(pairs, c, "fast", other)) fast["pairs_p50"][other][std::to_string(c)] = *x;
    if (auto x = delivered_ratio(rs, "fast", other)) fast["delivered_per_s_p1"][other] = *x;
  }
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  f.close();
  return f ? "" : path + ": " + std::strerror(errno);
}

}  // namespace synchmess::bench
