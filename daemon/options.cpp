#include "daemon/options.h"

#include <charconv>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "core/registry.h"
#include "daemon/master_requests.h"

namespace synchmess {
namespace {

std::optional<unsigned long long> number(const std::string& s) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Applies one setting; returns an error message or "".
std::string apply(Options& o, const std::string& name, const std::string& value, bool has_value,
                  std::string& config_file) {
  auto need = [&]() -> std::string {
    return has_value ? "" : fmt::format("--{} needs a value", name);
  };
  auto in_range = [&](unsigned long long lo, unsigned long long hi,
                      unsigned long long& out) -> std::string {
    if (auto e = need(); !e.empty()) return e;
    auto v = number(value);
    if (!v || *v < lo || *v > hi)
      return fmt::format("--{}={}: expected a number from {} to {}", name, value, lo, hi);
    out = *v;
    return "";
  };
  unsigned long long v = 0;
  if (name == "transport") {
    if (auto e = need(); !e.empty()) return e;
    if (value == "cuse") o.transport = TransportKind::cuse;
    else if (value == "fuse") o.transport = TransportKind::fuse;
    else if (value == "auto") o.transport = TransportKind::automatic;
    else return fmt::format("--transport={}: expected cuse, fuse or auto", value);
  } else if (name == "dev-dir") {
    if (auto e = need(); !e.empty()) return e;
    if (value.empty() || value[0] != '/') return "--dev-dir needs an absolute path";
    o.dev_dir = value;
    while (o.dev_dir.size() > 1 && o.dev_dir.back() == '/') o.dev_dir.pop_back();
  } else if (name == "foreground") {
    if (has_value && value != "true" && value != "yes" && value != "1")
      return "--foreground takes no value";
    o.foreground = true;
  } else if (name == "max-groups") {
    if (auto e = in_range(1, RegistryOptions::largest_max_groups, v); !e.empty()) return e;
    o.max_groups = static_cast<unsigned>(v);
  } else if (name == "max-message-size") {
    if (auto e = in_range(1, largest_message_size, v); !e.empty()) return e;
    o.max_message_size = v;
  } else if (name == "max-storage-size") {
    if (auto e = in_range(1, 1ull << 40, v); !e.empty()) return e;
    o.max_storage_size = v;
  } else if (name == "threads") {
    if (auto e = in_range(1, 64, v); !e.empty()) return e;
    o.threads = static_cast<unsigned>(v);
  } else if (name == "config") {
    if (auto e = need(); !e.empty()) return e;
    config_file = value;
  } else if (name == "help") {
    o.help = true;
  } else {
    return fmt::format("unknown option --{} (see --help)", name);
  }
  return "";
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

ParsedOptions parse_options(const std::vector<std::string>& args) {
  ParsedOptions out;
  std::string config;
  // Pass 1 finds --config; the file is applied first, the command line after.
  struct Setting {
    std::string name, value;
    bool has_value;
  };
  std::vector<Setting> cli;
  for (const auto& a : args) {
    if (a == "-h") {
      cli.push_back({"help", "", false});
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      out.error = fmt::format("unexpected argument '{}' (see --help)", a);
      return out;
    }
    auto eq = a.find('=');
    if (eq == std::string::npos)
      cli.push_back({a.substr(2), "", false});
    else
      cli.push_back({a.substr(2, eq - 2), a.substr(eq + 1), true});
    if (cli.back().name == "config") config = cli.back().value;
  }
  if (!config.empty()) {
    std::ifstream in(config);
    if (!in) {
      out.error = fmt::format("cannot read the configuration file {}", config);
      return out;
    }
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      line = trim(line.substr(0, line.find('#')));
      if (line.empty()) continue;
      auto eq = line.find('=');
      std::string name = trim(line.substr(0, eq));
      std::string value = eq == std::string::npos ? "" : trim(line.substr(eq + 1));
      std::string ignored;
      if (name == "config") {
        out.error = fmt::format("{}:{}: 'config' cannot be nested", config, lineno);
        return out;
      }
      if (auto e = apply(out.options, name, value, eq != std::string::npos, ignored); !e.empty()) {
        out.error = fmt::format("{}:{}: {}", config, lineno, e);
        return out;
      }
    }
  }
  for (const auto& s : cli) {
    std::string ignored;
    if (auto e = apply(out.options, s.name, s.value, s.has_value, ignored); !e.empty()) {
      out.error = e;
      return out;
    }
  }
  return out;
}

std::string usage() {
  return R"(Usage: synchmessd [OPTION]...
Serve the SynchMess device ABI: /dev/synch/synchmess and one device per group.

  --transport=cuse|fuse|auto  cuse: real character devices through /dev/cuse
                              (loads the cuse module if needed); fuse: regular
                              files in a FUSE filesystem mounted at --dev-dir,
                              for kernels without CUSE; auto (default): cuse
                              when available, otherwise fuse
  --dev-dir=DIR               where the devices appear (default /dev/synch;
                              with cuse it must lie under /dev)
  --foreground                stay in the foreground (default: detach once the
                              master device exists)
  --max-groups=N              highest group descriptor, 1..1048575 (default 64)
  --max-message-size=N        largest message in bytes, 1..65536 (default 1024)
  --max-storage-size=N        bytes stored per group, readable plus delayed
                              (default 1048576)
  --threads=N                 request threads (default: one per core, at least 2)
  --config=FILE               read `name = value` settings (the option names
                              above without --) before the command line
  --help                      show this help

The limits can be changed while running by root with IOCTL_SET_PARAMS on the
master device; shrinking them never drops stored messages.
SIGTERM or SIGINT: pending requests are answered (sleepers get EINTR), the
devices are removed, and the daemon exits 0.
)";
}

}  // namespace synchmess
