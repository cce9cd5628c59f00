// synchmess-fuzz: a bounded, randomized, multi-process hostile client of a
// running synchmessd, and the checks that the daemon survived it.
// Usage: see README.md or --help.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/fuzz/checks.h"
#include "tests/fuzz/options.h"
#include "tests/fuzz/shared.h"
#include "tests/fuzz/storm.h"

namespace fuzz {
namespace {

constexpr const char* usage =
    "usage: synchmess-fuzz MODE [--dev-dir DIR] [options]\n"
    "  MODE: storm | warmup | check-sleepers | check-groups | check-awake\n"
    "  --dev-dir DIR      where the master device lives (default /dev/synch)\n"
    "  --groups N         group descriptors 1..N exist (default 64)\n"
    "storm:\n"
    "  --seconds N        length (default 20)\n"
    "  --workers P        processes (default 6, at most 64)\n"
    "  --max-ops N        operations in all, at most (default 5000000)\n"
    "  --seed S           the storm's seed (default: random; printed)\n"
    "  --worker-seed X    every worker uses X, the seed of a failure line\n"
    "                     (with --workers 1 --no-kill: replays that worker)\n"
    "  --no-kill          do not SIGKILL and respawn workers\n"
    "check-awake:\n"
    "  --sleepers K       sleeper threads (default 8)\n";

template <class T>
bool number(const char* s, T& out, T lo, T hi) {
  std::string_view v(s);
  int base = 10;
  if (v.starts_with("0x") || v.starts_with("0X")) {
    v.remove_prefix(2);
    base = 16;
  }
  T x{};
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x, base);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty() || x < lo || x > hi) return false;
  out = x;
  return true;
}

}  // namespace

bool parse_options(int argc, char** argv, Options& o) {
  auto bad = [](const std::string& why) {
    std::fprintf(stderr, "synchmess-fuzz: %s\n%s", why.c_str(), usage);
    return false;
  };
  if (argc < 2) return bad("no mode");
  o.mode = argv[1];
  if (o.mode == "--help" || o.mode == "-h") {
    std::fputs(usage, stdout);
    return false;
  }
  if (o.mode != "storm" && o.mode != "warmup" && o.mode != "check-sleepers" && o.mode != "check-groups" &&
      o.mode != "check-awake")
    return bad("unknown mode " + o.mode);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
    } else if (a != "--no-kill") {
      if (i + 1 >= argc) return bad(a + " needs a value");
      value = argv[++i];
    }
    const char* v = value.c_str();
    bool ok = true;
    if (a == "--dev-dir") o.dev_dir = value;
    else if (a == "--seconds") ok = number(v, o.seconds, 1u, 3600u);
    else if (a == "--workers") ok = number(v, o.workers, 1u, static_cast<unsigned>(max_workers));
    else if (a == "--max-ops") ok = number<std::uint64_t>(v, o.max_ops, 1, ~std::uint64_t{0});
    else if (a == "--seed") ok = number<std::uint64_t>(v, o.seed, 0, ~std::uint64_t{0});
    else if (a == "--worker-seed") ok = number<std::uint64_t>(v, o.worker_seed, 0, ~std::uint64_t{0});
    else if (a == "--no-kill") o.kill_workers = false;
    else if (a == "--groups") ok = number(v, o.groups, 1u, 1048575u);
    else if (a == "--sleepers") ok = number(v, o.sleepers, 1u, 64u);
    else return bad("unknown option " + a);
    if (!ok) return bad("bad value for " + a + ": " + value);
  }
  return true;
}

}  // namespace fuzz

int main(int argc, char** argv) {
  fuzz::Options o;
  if (!fuzz::parse_options(argc, argv, o)) return argc >= 2 && !std::strcmp(argv[1], "--help") ? 0 : 2;
  if (!fuzz::learn_params(o)) return 2;
  int rc = 1;
  if (o.mode == "storm") rc = fuzz::run_storm(o);
  else if (o.mode == "warmup") rc = fuzz::warmup(o);
  else if (o.mode == "check-sleepers") rc = fuzz::check_sleepers(o);
  else if (o.mode == "check-groups") rc = fuzz::check_groups(o);
  else if (o.mode == "check-awake") rc = fuzz::check_awake(o);
  std::fflush(stdout);
  return rc;
}
