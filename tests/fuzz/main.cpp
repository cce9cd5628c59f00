// synchmess-fuzz: a bounded, randomized, multi-process hostile client of a
// running synchmessd, and the checks that the daemon survived it.
// Usage: see README.md or --help.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tests/fuzz/checks.h"
#include "tests/fuzz/options.h"
#include "tests/fuzz/shared.h"
#include "tests/fuzz/storm.h"

namespace fuzz {

bool parse_options(int argc, char** argv, Options& o) {
  CLI::App app{"synchmess-fuzz: hostile clients against a running synchmessd, and the checks afterwards"};
  app.add_option("mode", o.mode, "storm | warmup | check-sleepers | check-groups | check-awake")
      ->required()
      ->check(CLI::IsMember({"storm", "warmup", "check-sleepers", "check-groups", "check-awake"}));
  app.add_option("--dev-dir", o.dev_dir, "where the master device lives")->capture_default_str();
  app.add_option("--seconds", o.seconds, "storm length")->capture_default_str()->check(CLI::Range(1u, 3600u));
  app.add_option("--workers", o.workers, "storm processes")->capture_default_str()->check(CLI::Range(1, max_workers));
  app.add_option("--max-ops", o.max_ops, "storm: operations in all, at most")->capture_default_str();
  app.add_option("--seed", o.seed, "storm seed (0: random; printed)");
  app.add_option("--worker-seed", o.worker_seed,
                 "storm: the seed of a worker from a failure line (with --workers 1 --no-kill: replay it)");
  app.add_flag("!--no-kill", o.kill_workers, "storm: do not SIGKILL and respawn workers");
  app.add_option("--groups", o.groups, "group descriptors 1..N exist")->capture_default_str()->check(CLI::Range(1u, 1048575u));
  app.add_option("--sleepers", o.sleepers, "check-awake: sleeper threads")->capture_default_str()->check(CLI::Range(1u, 64u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return false;
  }
  return true;
}

}  // namespace fuzz

int main(int argc, char** argv) {
  fuzz::Options o;
  if (!fuzz::parse_options(argc, argv, o)) return 2;
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
