// main.cpp - synchmessctl: drive a running synchmess service from the shell.
// One CLI11 subcommand per operation (install, send, recv, delay, revoke,
// flush, sleep, awake, groups, params, stats); service.h does the device
// work, stats_view.h formats the statistics.
//
// Exit status: 0 when the operation succeeded, 1 when it failed (one line
// on stderr says why), 2 for a bad command line.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "service.h"
#include "stats_view.h"

namespace synchmess::ctl {
namespace {

constexpr int kFailed = 1, kUsage = 2;

struct Args {
  std::string master = "/dev/synch/synchmess";
  unsigned n = 0;
  std::string message;
  unsigned delay_ms = 0;
  std::string wait;  // "" with --wait alone: forever
  unsigned long long max_message_size = 0, max_storage_size = 0;
  bool json = false;
  std::string watch = "1";  // seconds, checked by CLI11
};

// --watch's S: seconds, a decimal number in 0.1..86400.
constexpr double kMinWatch = 0.1, kMaxWatch = 86400;
std::optional<double> watch_seconds(const std::string& v) {
  double s = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (ec != std::errc() || end != v.data() + v.size() || !std::isfinite(s) || s < kMinWatch || s > kMaxWatch)
    return std::nullopt;
  return s;
}

std::unexpected<std::string> fail(std::string s) { return std::unexpected(std::move(s)); }

Outcome<void> print(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    return fail(fmt::format("writing to standard output: {}", std::strerror(errno)));
  return {};
}

// The whole of standard input, refused when it holds more than limit bytes.
Outcome<std::string> read_stdin(unsigned long long limit) {
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
    if (r == 0) return in;
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(fmt::format("reading standard input: {}", std::strerror(errno)));
    }
    in.append(buf, static_cast<std::size_t>(r));
    if (in.size() > limit)
      return fail(fmt::format("standard input holds more than max_message_size ({} bytes): nothing sent",
                              limit));
  }
}

Outcome<void> install(const Service& s, const Args& a) {
  auto path = s.install(a.n);
  if (!path) return fail(path.error());
  return print(*path + "\n");
}

Outcome<void> send(const Service& s, const Args& a) {
  std::string data = a.message;
  if (a.message == "-") {
    auto p = s.params();
    if (!p) return fail(p.error());
    auto in = read_stdin(p->max_message_size);
    if (!in) return fail(in.error());
    data = std::move(*in);
  }
  if (data.empty()) return fail("the message is empty: synchmess does not queue empty messages");
  auto g = s.group(a.n, O_WRONLY);
  if (!g) return fail(g.error());
  return g->send(data);
}

Outcome<void> recv(const Service& s, const Args& a, bool wait) {
  int timeout_ms = 0;
  if (wait) timeout_ms = a.wait.empty() ? -1 : std::stoi(a.wait);  // checked by CLI11
  auto g = s.group(a.n, O_RDONLY);
  if (!g) return fail(g.error());
  auto m = g->receive(timeout_ms);
  if (!m) return fail(m.error());
  if (!*m) {
    if (timeout_ms > 0) return fail(fmt::format("group {} is empty (waited {} ms)", a.n, timeout_ms));
    return fail(fmt::format("group {} is empty", a.n));
  }
  // The message's bytes as they are; on a terminal, end the line.
  if (isatty(STDOUT_FILENO) && !(*m)->ends_with('\n')) **m += '\n';
  return print(**m);
}

Outcome<void> group_op(const Service& s, const Args& a, Outcome<void> (Group::*op)() const) {
  auto g = s.group(a.n, O_RDONLY);
  if (!g) return fail(g.error());
  return ((*g).*op)();
}

Outcome<void> delay(const Service& s, const Args& a) {
  auto g = s.group(a.n, O_RDONLY);
  if (!g) return fail(g.error());
  return g->set_delay(a.delay_ms);
}

Outcome<void> awake(const Service& s, const Args& a) {
  auto g = s.group(a.n, O_RDONLY);
  if (!g) return fail(g.error());
  auto woke = g->awake();
  if (!woke) return fail(woke.error());
  return print(fmt::format("{}\n", *woke));
}

Outcome<void> groups(const Service& s, const Args&) {
  auto list = s.groups();
  if (!list) return fail(list.error());
  std::string out;
  for (const auto& g : *list) out += fmt::format("{} {}\n", g.descriptor, g.path);
  return print(out);
}

Outcome<void> params(const Service& s, const Args& a) {
  if (a.max_message_size || a.max_storage_size) {
    if (auto r = s.set_params({a.max_message_size, a.max_storage_size}); !r) return r;
  }
  auto p = s.params();
  if (!p) return fail(p.error());
  return print(fmt::format("max_message_size {}\nmax_storage_size {}\n", p->max_message_size,
                           p->max_storage_size));
}

// The statistics once: the daemon's, and group n's (n > 0) or every group's.
Outcome<std::string> stats_text(const Service& s, const Args& a, bool has_n) {
  auto d = s.stats();
  if (!d) return fail(d.error());
  std::vector<synchmess_group_stats> groups;
  if (has_n) {
    auto g = s.group_stats(a.n, d->max_groups);
    if (!g) return fail(g.error());
    groups.push_back(*g);
  } else {
    auto all = s.all_group_stats();
    if (!all) return fail(all.error());
    groups = std::move(*all);
  }
  return a.json ? render_json(*d, groups) : render_table(*d, groups);
}

// --watch: redraw every `seconds` until SIGINT, SIGTERM or SIGHUP, which end
// it with status 0. The signals are blocked and taken by sigtimedwait, which
// is also the wait between redraws: no handler, no race with the sleep.
Outcome<void> stats_watch(const Service& s, const Args& a, bool has_n, double seconds) {
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  const bool tty = isatty(STDOUT_FILENO);
  timespec every{static_cast<time_t>(seconds),
                 static_cast<long>((seconds - std::floor(seconds)) * 1e9)};
  for (;;) {
    auto text = stats_text(s, a, has_n);
    if (!text) return fail(text.error());
    std::time_t now = std::time(nullptr);
    char when[32] = "";
    std::strftime(when, sizeof when, "%F %T", std::localtime(&now));
    std::string frame = fmt::format("{}every {} s, {} (Ctrl-C stops)\n{}", tty ? "\x1b[H\x1b[2J" : "",
                                    a.watch, when, *text);
    if (!tty) frame += "\n";
    if (auto r = print(frame); !r) return r;
    int sig = sigtimedwait(&stop, nullptr, &every);
    if (sig > 0) return {};
    if (errno != EAGAIN && errno != EINTR) return fail(fmt::format("waiting: {}", std::strerror(errno)));
  }
}

int run(int argc, char** argv) {
  CLI::App app("Drive a running synchmess service: install groups, send and receive messages,\n"
               "delays, the sleep/awake barrier, parameters. See synchmessctl(1).",
               "synchmessctl");
  app.require_subcommand(1);
  app.fallthrough();  // --master also after the subcommand
  Args a;
  app.add_option("--master", a.master, "the master device (default /dev/synch/synchmess; "
                 "with FUSE DEV_DIR/synchmess)");

  using Handler = std::function<Outcome<void>(const Service&)>;
  std::map<CLI::App*, Handler> handlers;
  auto group_cmd = [&](const char* name, const char* what, auto op) {
    CLI::App* c = app.add_subcommand(name, what);
    c->add_option("N", a.n, "group descriptor")->required();
    handlers[c] = [op, &a](const Service& s) { return op(s, a); };
    return c;
  };

  group_cmd("install", "install group N (if new) and print its device path", install);
  CLI::App* send_cmd = group_cmd("send", "send MESSAGE to group N as one message", send);
  send_cmd->add_option("MESSAGE", a.message, "the message; - reads it from standard input "
                       "(all of it, at most max_message_size bytes)")->required();
  CLI::App* recv_cmd = app.add_subcommand("recv", "receive the oldest message of group N and print it");
  recv_cmd->add_option("N", a.n, "group descriptor")->required();
  CLI::Option* wait = recv_cmd->add_option("--wait", a.wait, "wait up to MS milliseconds for a "
                                           "message (--wait alone: forever)")
                          ->expected(0, 1)->type_name("MS")
                          ->check(CLI::Range(0, INT_MAX));
  handlers[recv_cmd] = [&a, wait](const Service& s) { return recv(s, a, wait->count() > 0); };
  CLI::App* delay_cmd = group_cmd("delay", "set the send delay of group N to MS milliseconds "
                                  "(0: none)", delay);
  delay_cmd->add_option("MS", a.delay_ms, "milliseconds")->required();
  group_cmd("revoke", "discard the delayed messages of group N",
            [](const Service& s, const Args& x) { return group_op(s, x, &Group::revoke); });
  group_cmd("flush", "publish the delayed messages of group N now",
            [](const Service& s, const Args& x) { return group_op(s, x, &Group::flush); });
  group_cmd("sleep", "block until an awake on group N",
            [](const Service& s, const Args& x) { return group_op(s, x, &Group::sleep); });
  group_cmd("awake", "wake the sleepers of group N and print how many woke", awake);
  CLI::App* groups_cmd = app.add_subcommand("groups", "list the installed groups: N and device path");
  handlers[groups_cmd] = [&a](const Service& s) { return groups(s, a); };
  CLI::App* params_cmd = app.add_subcommand("params", "print the parameters; with options set them "
                                            "(root only)");
  // 0 would mean "keep" to the ioctl: leaving the option out says that.
  const CLI::Validator at_least_one(
      [](std::string& v) { return v.find_first_not_of('0') == std::string::npos ? "must be at least 1" : ""; },
      "BYTES");
  params_cmd->add_option("--max-message-size", a.max_message_size, "largest message, bytes")
      ->check(at_least_one);
  params_cmd->add_option("--max-storage-size", a.max_storage_size, "bytes each group may hold")
      ->check(at_least_one);
  handlers[params_cmd] = [&a](const Service& s) { return params(s, a); };

  CLI::App* stats_cmd = app.add_subcommand("stats", "print the statistics of the service and of group N "
                                           "(default: every installed group)");
  CLI::Option* stats_n = stats_cmd->add_option("N", a.n, "group descriptor");
  stats_cmd->add_flag("--json", a.json, "one JSON object instead of the table");
  CLI::Option* watch_opt =
      stats_cmd->add_option("--watch", a.watch, "redraw the table every S seconds (default 1; 0.1..86400) "
                            "until interrupted")
          ->expected(0, 1)->type_name("S")
          ->check(CLI::Validator(
              [](std::string& v) { return watch_seconds(v) ? "" : "S must be a number of seconds, 0.1..86400"; },
              "S"));
  watch_opt->excludes(stats_cmd->get_option("--json"));
  handlers[stats_cmd] = [&a, stats_n, watch_opt](const Service& s) -> Outcome<void> {
    const bool has_n = stats_n->count() > 0;
    if (watch_opt->count() > 0) return stats_watch(s, a, has_n, *watch_seconds(a.watch));
    auto text = stats_text(s, a, has_n);
    if (!text) return fail(text.error());
    return print(*text);
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command is left over as an argument: CLI11 would only say
    // that a subcommand is required.
    if (app.get_subcommands().empty() && !app.remaining().empty() && !app.remaining().front().starts_with('-')) {
      std::fputs(fmt::format("synchmessctl: unknown command '{}' (see synchmessctl --help)\n",
                             app.remaining().front()).c_str(), stderr);
      return kUsage;
    }
    return app.exit(e) == 0 ? 0 : kUsage;
  }
  CLI::App* cmd = app.get_subcommands().front();

  auto service = Service::open(a.master);
  Outcome<void> r = service ? handlers.at(cmd)(*service) : fail(service.error());
  if (r) return 0;
  std::fputs(fmt::format("synchmessctl: {}\n", r.error()).c_str(), stderr);
  return kFailed;
}

}  // namespace
}  // namespace synchmess::ctl

int main(int argc, char** argv) { return synchmess::ctl::run(argc, argv); }
