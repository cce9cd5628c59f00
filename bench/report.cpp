// report.cpp - see report.h.
#include "report.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace synchmess::bench {
namespace {

// Which phase's wall time an op's rate is measured over (0 = no rate).
int rate_phase(Op op) {
  switch (op) {
    case kWrite1: case kReadHit1: case kReadEmpty1: return 1;
    case kWrite2: case kReadHit2: case kReadEmpty2: case kFlush: return 2;
    default: return 0;
  }
}

std::optional<double> ops_per_s(const TargetResult& r, Op op,
                                const LogHistogram& h) {
  int ph = rate_phase(op);
  double s = ph == 1 ? r.phase1_s : ph == 2 ? r.phase2_s : 0.0;
  if (s <= 0 || h.count() == 0) return std::nullopt;
  return double(h.count()) / s;
}

double all_ops_per_s_phase1(const TargetResult& r) {
  if (r.phase1_s <= 0) return 0;
  return double(r.hist[kWrite1].count() + r.hist[kReadHit1].count() +
                r.hist[kReadEmpty1].count()) / r.phase1_s;
}

double writes_per_s_phase1(const TargetResult& r) {
  return r.phase1_s > 0 ? double(r.hist[kWrite1].count()) / r.phase1_s : 0;
}

std::string us(std::uint64_t ns) { return fmt::format("{:.1f}", double(ns) / 1e3); }

const char* label(Op op, bool final_step) {
  if (final_step) {
    switch (op) {
      case kFlush: return "final flush";
      case kRevoke: return "final revoke";
      case kDrainRead: return "drain read";
      case kSetDelay: return "reset delay 0";
      default: return op_name(op);
    }
  }
  switch (op) {
    case kInstall: return "install";
    case kOpen: return "access+open";
    case kWrite1: return "write        p1";
    case kReadHit1: return "read hit     p1";
    case kReadEmpty1: return "read empty   p1";
    case kDeliver1: return "end-to-end   p1";
    case kWrite2: return "write delayd p2";
    case kReadHit2: return "read hit     p2";
    case kReadEmpty2: return "read empty   p2";
    case kDeliver2: return "end-to-end   p2";
    case kFlush: return "flush        p2";
    case kSetDelay: return "set delay";
    case kSleep: return "in SLEEP";
    case kAwake: return "AWAKE call";
    case kHandoff: return "AWAKE->running";
    default: return op_name(op);
  }
}

constexpr Op kTableOrder[] = {kInstall, kOpen, kWrite1, kReadHit1, kReadEmpty1,
                              kDeliver1, kSetDelay, kSleep, kAwake, kHandoff,
                              kWrite2, kReadHit2, kReadEmpty2, kDeliver2, kFlush};
constexpr Op kFinalOrder[] = {kFlush, kRevoke, kDrainRead, kSetDelay};

void print_row(std::FILE* out, const TargetResult& r, Op op,
               const LogHistogram& h, bool final_step) {
  if (h.count() == 0) return;
  auto rate = final_step ? std::nullopt : ops_per_s(r, op, h);
  fmt::print(out, "  {:<16} {:>10} {:>11} {:>10} {:>10} {:>11}\n",
             label(op, final_step), h.count(),
             rate ? fmt::format("{:.0f}", *rate) : std::string("-"),
             us(h.percentile(0.5)), us(h.percentile(0.99)), us(h.max()));
}

void print_target(std::FILE* out, const TargetResult& r) {
  fmt::print(out, "\n== {} ({}): {}\n", r.name, r.kind, r.description);
  if (!r.ok) fmt::print(out, "  FAILED: {}\n", r.error);
  fmt::print(out, "  rounds {}, phase 1 {:.2f} s, phase 2 {:.2f} s, final {:.3f} s{}\n",
             r.rounds, r.phase1_s, r.phase2_s, r.final_s,
             r.has_delay ? fmt::format(", flush via {}",
                                       r.flush_method.empty() ? "-" : r.flush_method)
                         : std::string(", no delay/flush (baseline)"));
  fmt::print(out, "  {:<16} {:>10} {:>11} {:>10} {:>10} {:>11}\n", "op (wall clock)",
             "count", "ops/s", "p50 us", "p99 us", "max us");
  for (Op op : kTableOrder) print_row(out, r, op, r.hist[op], false);
  for (Op op : kFinalOrder) print_row(out, r, op, r.final_hist[op], true);
  const DeliveryCheck& c = r.check;
  fmt::print(out,
             "  messages: written {}, delivered {} (of which {} in the final "
             "drain), missing {}{}, duplicates {}, corrupt {}, unexpected {}\n",
             c.expected, c.delivered, r.drained, c.missing,
             r.revoked_at_end && c.missing ? " (revoked at the end, not lost)" : "",
             r.duplicates, r.corrupt, c.unexpected + r.out_of_range);
  fmt::print(out,
             "  full-group retries {}, write errors {}, read errors {}, other "
             "errors {}\n",
             r.write_full, r.write_errors, r.read_errors, r.other_errors);
  fmt::print(out, "  exactly-once after the final drain: {}\n",
             r.exactly_once() ? "PASS" : "FAIL");
  if (r.hist[kHandoff].count())
    fmt::print(out,
               "  hand-off: {} sleepers woken with {} AWAKE calls; all sleepers "
               "of a round running {} us after that round's first successful "
               "AWAKE{}\n",
               r.hist[kHandoff].count(), r.awake_calls, us(r.wake_all_ns),
               r.rounds > 1 ? " (worst round)" : "");
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

constexpr Op kCompareOps[] = {kWrite1, kReadHit1, kReadEmpty1, kDeliver1,
                              kWrite2, kReadHit2, kFlush, kAwake, kHandoff,
                              kInstall, kSetDelay};

std::string ratio_text(double a, double b) {
  if (a <= 0 || b <= 0) return "-";
  return fmt::format("{:.2f}x", a / b);
}

void print_comparison(std::FILE* out, const std::vector<TargetResult>& rs) {
  const TargetResult* dev = find(rs, "device");
  const TargetResult* flo = find(rs, "floor");
  fmt::print(out, "\n== comparison: p50 in us (ratio = device / floor)\n  {:<16}", "op");
  for (const auto& r : rs) fmt::print(out, " {:>10}", r.name);
  if (dev && flo) fmt::print(out, " {:>12}", "device/floor");
  fmt::print(out, "\n");
  for (Op op : kCompareOps) {
    bool any = false;
    for (const auto& r : rs) any = any || r.hist[op].count();
    if (!any) continue;
    fmt::print(out, "  {:<16}", label(op, false));
    for (const auto& r : rs)
      fmt::print(out, " {:>10}", r.hist[op].count() ? us(r.hist[op].percentile(0.5)) : "-");
    if (dev && flo)
      fmt::print(out, " {:>12}", ratio_text(double(dev->hist[op].percentile(0.5)),
                                            double(flo->hist[op].percentile(0.5))));
    fmt::print(out, "\n");
  }
  struct Row { const char* name; double (*f)(const TargetResult&); };
  const Row rows[] = {
      {"writes/s p1", writes_per_s_phase1},
      {"delivered/s p1", [](const TargetResult& r) { return r.delivered_per_s_phase1(); }},
      {"all ops/s p1", all_ops_per_s_phase1},
  };
  fmt::print(out, "  throughput (ratio = device / floor):\n");
  for (const Row& row : rows) {
    fmt::print(out, "  {:<16}", row.name);
    for (const auto& r : rs) fmt::print(out, " {:>10.0f}", row.f(r));
    if (dev && flo) fmt::print(out, " {:>12}", ratio_text(row.f(*dev), row.f(*flo)));
    fmt::print(out, "\n");
  }
}

// --- JSON -----------------------------------------------------------------

std::string esc(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += char(c); }
    else if (c < 0x20) o += fmt::format("\\u{:04x}", c);
    else o += char(c);
  }
  return o + "\"";
}

std::string num(double v) {
  if (!(v == v) || v > 1e300 || v < -1e300) return "null";
  return fmt::format("{}", v);
}

std::string hist_json(const TargetResult& r, Op op, const LogHistogram& h,
                      bool final_step) {
  auto rate = final_step ? std::nullopt : ops_per_s(r, op, h);
  return fmt::format(
      "{{\"count\": {}, \"ops_per_s\": {}, \"p50_ns\": {}, \"p99_ns\": {}, "
      "\"max_ns\": {}, \"min_ns\": {}, \"mean_ns\": {}}}",
      h.count(), rate ? num(*rate) : "null", h.percentile(0.5),
      h.percentile(0.99), h.max(), h.min(), num(h.mean()));
}

template <typename T, typename F>
std::string list(const std::vector<T>& v, F f) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + f(v[i]);
  return s + "]";
}

std::string target_json(const TargetResult& r) {
  std::string ops, fin;
  for (int op = 0; op < kOpCount; ++op) {
    if (r.hist[op].count())
      ops += fmt::format("{}\n      {}: {}", ops.empty() ? "" : ",",
                         esc(op_name(Op(op))), hist_json(r, Op(op), r.hist[op], false));
    if (r.final_hist[op].count())
      fin += fmt::format("{}\n      {}: {}", fin.empty() ? "" : ",",
                         esc(op_name(Op(op))), hist_json(r, Op(op), r.final_hist[op], true));
  }
  const DeliveryCheck& c = r.check;
  std::string s;
  s += fmt::format("    {{\"name\": {}, \"kind\": {}, \"description\": {}, \"ok\": {}, "
                   "\"error\": {}, \"rounds\": {},\n",
                   esc(r.name), esc(r.kind), esc(r.description), r.ok, esc(r.error), r.rounds);
  s += fmt::format("     \"phase1_s\": {}, \"phase2_s\": {}, \"final_s\": {}, "
                   "\"has_delay\": {}, \"flush_method\": {},\n",
                   num(r.phase1_s), num(r.phase2_s), num(r.final_s), r.has_delay,
                   esc(r.flush_method));
  s += fmt::format("     \"ops\": {{{}\n     }},\n", ops);
  s += fmt::format("     \"final_ops\": {{{}\n     }},\n", fin);
  s += fmt::format(
      "     \"messages\": {{\"written\": {}, \"delivered\": {}, \"drained\": {}, "
      "\"missing\": {}, \"missing_are_revoked\": {}, \"duplicates\": {}, "
      "\"corrupt\": {}, \"unexpected\": {}, \"write_full_retries\": {}, "
      "\"write_errors\": {}, \"read_errors\": {}, \"other_errors\": {}, "
      "\"exactly_once\": {}}},\n",
      c.expected, c.delivered, r.drained, c.missing, r.revoked_at_end, r.duplicates,
      r.corrupt, c.unexpected + r.out_of_range, r.write_full, r.write_errors,
      r.read_errors, r.other_errors, r.exactly_once());
  s += fmt::format(
      "     \"throughput\": {{\"writes_per_s_p1\": {}, \"delivered_per_s_p1\": {}, "
      "\"all_ops_per_s_p1\": {}}},\n",
      num(writes_per_s_phase1(r)), num(r.delivered_per_s_phase1()),
      num(all_ops_per_s_phase1(r)));
  s += fmt::format("     \"handoff\": {{\"awake_calls\": {}, \"all_woken_ns\": {}}},\n",
                   r.awake_calls, r.wake_all_ns);
  s += fmt::format(
      "     \"per_round\": {{\"write_p1_p50_ns\": {}, \"read_hit_p1_p50_ns\": {}, "
      "\"delivered_per_s_p1\": {}}}}}",
      list(r.round_write_p50, [](std::uint64_t v) { return std::to_string(v); }),
      list(r.round_read_p50, [](std::uint64_t v) { return std::to_string(v); }),
      list(r.round_delivered_per_s, [](double v) { return num(v); }));
  return s;
}

std::string ratios_json(const std::vector<TargetResult>& rs) {
  const TargetResult* dev = find(rs, "device");
  const TargetResult* flo = find(rs, "floor");
  if (!dev || !flo) return "null";
  std::string p50;
  for (Op op : kCompareOps) {
    double a = double(dev->hist[op].percentile(0.5));
    double b = double(flo->hist[op].percentile(0.5));
    if (a > 0 && b > 0)
      p50 += fmt::format("{}{}: {}", p50.empty() ? "" : ", ", esc(op_name(op)), num(a / b));
  }
  auto rt = [](double a, double b) { return a > 0 && b > 0 ? num(a / b) : "null"; };
  return fmt::format(
      "{{\"p50\": {{{}}}, \"throughput\": {{\"writes_per_s_p1\": {}, "
      "\"delivered_per_s_p1\": {}, \"all_ops_per_s_p1\": {}}}}}",
      p50, rt(writes_per_s_phase1(*dev), writes_per_s_phase1(*flo)),
      rt(dev->delivered_per_s_phase1(), flo->delivered_per_s_phase1()),
      rt(all_ops_per_s_phase1(*dev), all_ops_per_s_phase1(*flo)));
}

}  // namespace

void print_report(std::FILE* out, const MachineInfo& m, const BenchOptions& o,
                  const std::vector<TargetResult>& results) {
  const WorkloadOptions& w = o.workload;
  fmt::print(out, "synchmess-bench: {} CPU(s) {}, {}\n", m.cores, m.cpu_model, m.kernel);
  fmt::print(out,
             "workload: {} producer + {} consumer threads, {} groups, {} B "
             "messages, {:.1f} s per phase, delay {} ms, final {}, rounds {}\n",
             w.threads, w.threads, w.groups, w.message_size,
             double(w.duration_ns) / 1e9, w.delay_ms,
             w.final_mode == FinalMode::kFlush ? "flush" : "revoke", o.rounds);
  fmt::print(out, "latencies are wall clock (CLOCK_MONOTONIC) per call; p1/p2 = phase 1/2\n");
  for (const auto& r : results) print_target(out, r);
  print_comparison(out, results);
  std::fflush(out);
}

std::string write_json(const std::string& path, const MachineInfo& m,
                       const BenchOptions& o,
                       const std::vector<TargetResult>& results) {
  const WorkloadOptions& w = o.workload;
  std::string s = "{\n";
  s += fmt::format("  \"machine\": {{\"cpu_model\": {}, \"cores\": {}, \"kernel\": {}, "
                   "\"hostname\": {}}},\n",
                   esc(m.cpu_model), m.cores, esc(m.kernel), esc(m.hostname));
  s += fmt::format(
      "  \"options\": {{\"master\": {}, \"threads\": {}, \"groups\": {}, "
      "\"duration_s\": {}, \"message_size\": {}, \"delay_ms\": {}, \"final\": {}, "
      "\"flush\": {}, \"rounds\": {}, \"targets\": {}}},\n",
      esc(o.master), w.threads, w.groups, num(double(w.duration_ns) / 1e9),
      w.message_size, w.delay_ms,
      esc(w.final_mode == FinalMode::kFlush ? "flush" : "revoke"),
      esc(o.flush == FlushMode::kAuto ? "auto" : o.flush == FlushMode::kFsync ? "fsync" : "ioctl"),
      o.rounds, list(o.targets, [](const std::string& t) { return esc(t); }));
  s += "  \"latency_unit\": \"ns, wall clock (CLOCK_MONOTONIC)\",\n";
  s += "  \"targets\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i)
    s += target_json(results[i]) + (i + 1 < results.size() ? ",\n" : "\n");
  s += "  ],\n";
  s += "  \"ratios_device_over_floor\": " + ratios_json(results) + "\n}\n";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return path + ": " + std::strerror(errno);
  bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
  ok = std::fclose(f) == 0 && ok;
  return ok ? "" : path + ": write failed";
}

}  // namespace synchmess::bench
