#include "daemon/options.h"

#include <algorithm>
#include <istream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/registry.h"
#include "core/size_limits.h"
#include "synchmess_fast.h"
#include "synchmess_interface.h"

namespace synchmess {
namespace {

constexpr std::size_t device_path_size = sizeof(group_t{}.device_path);
constexpr std::string_view device_name = "/synchmess";
constexpr std::size_t fast_socket_size = sizeof(synchmess_fast_ticket{}.socket_path);

// CLI11's TOML/INI reader, fed one line at a time so that a refused value can
// name its line.  Remembers where each setting came from and whether the
// command line overrides it (CLI11 reads the file after the command line and
// ignores the file's value of an option the command line gave).
class LineConfig : public CLI::ConfigTOML {
 public:
  struct Setting {
    std::string name;
    int line;
    bool overridden;
  };

  explicit LineConfig(const CLI::App& app) : app_(app) {
    arrayDelimiter('\n');  // a value is one string: no splitting on spaces or commas
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    std::vector<CLI::ConfigItem> out;
    std::string text;
    for (int line = 1; std::getline(in, text); ++line) {
      std::istringstream one(text);
      for (auto& item : CLI::ConfigTOML::from_config(one)) {
        if (item.name == "++" || item.name == "--")
          throw CLI::ConfigError(fmt::format("{}:{}: sections are not supported", file(), line));
        const CLI::Option* op = app_.get_option_no_throw("--" + item.name);
        if (!item.parents.empty() || op == nullptr)
          throw CLI::ConfigError(fmt::format("{}:{}: unknown setting '{}'", file(), line, item.fullname()));
        if (!op->get_configurable())
          throw CLI::ConfigError(
              fmt::format("{}:{}: '{}' cannot be set in a configuration file", file(), line, item.name));
        // Repeated: the last line wins, as on the command line (CLI11 would use the first).
        std::erase_if(out, [&](const CLI::ConfigItem& i) { return i.name == item.name; });
        std::erase_if(settings_, [&](const Setting& s) { return s.name == item.name; });
        settings_.push_back({item.name, line, op->count() > 0});
        out.push_back(std::move(item));
      }
    }
    return out;
  }

  std::string file() const { return app_.get_config_ptr()->as<std::string>(); }

  // "FILE:LINE: " if option `name`'s value came from the file, else "".
  std::string where(const std::string& name) const {
    for (const auto& s : settings_)
      if (s.name == name) return s.overridden ? "" : fmt::format("{}:{}: ", file(), s.line);
    return "";
  }

 private:
  const CLI::App& app_;
  mutable std::vector<Setting> settings_;
};

// The command line definition, bound to an Options.
class Parser {
 public:
  explicit Parser(Options& o) : o_(o) {
    app_.footer(
        "The limits can be changed while running by root with IOCTL_SET_PARAMS on the\n"
        "master device; shrinking them never drops stored messages.\n"
        "SIGTERM or SIGINT: pending requests are answered (sleepers get EINTR), the\n"
        "devices are removed, and the daemon exits 0.  SIGHUP, SIGUSR2, SIGALRM and\n"
        "SIGPIPE are ignored; SIGUSR1 logs a status line.\n");
    app_.get_formatter()->column_width(30);
    app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app_.allow_config_extras(CLI::config_extras_mode::error);
    config_ = std::make_shared<LineConfig>(app_);
    app_.config_formatter(config_);

    app_.add_option("--transport", transport_,
                    "cuse: real character devices through /dev/cuse\n"
                    "(loads the cuse module if needed, unless\n"
                    "--no-modprobe); fuse: regular files in a FUSE\n"
                    "filesystem mounted at --dev-dir, for kernels\n"
                    "without CUSE; auto (default): cuse when\n"
                    "available, otherwise fuse")
        ->type_name("cuse|fuse|auto")
        ->check(noted("--transport", CLI::IsMember({"cuse", "fuse", "auto"})));
    app_.add_option("--dev-dir", o.dev_dir,
                    "where the devices appear (default /dev/synch;\n"
                    "with cuse it must lie under /dev)")
        ->type_name("DIR")
        ->transform(noted("--dev-dir", absolute_path()));
    app_.add_flag("--foreground", o.foreground,
                  "stay in the foreground (default: detach once the\n"
                  "master device exists)")
        ->check(noted("--foreground", boolean()));
    app_.add_flag("--no-modprobe", o.no_modprobe,
                  "never run `modprobe cuse`: without /dev/cuse,\n"
                  "--transport=cuse fails and auto chooses fuse\n"
                  "(for a service that may not load modules)")
        ->check(noted("--no-modprobe", boolean()));
    number(o.max_groups, "--max-groups", RegistryOptions::largest_max_groups,
           "highest group descriptor, 1..{} (default {})");
    number(o.max_message_size, "--max-message-size", Limits::largest_max_message_size,
           "largest message in bytes, 1..{} (default {})");
    number(o.max_storage_size, "--max-storage-size", Limits::largest_max_storage_size,
           "bytes stored per group, readable plus delayed,\n1..{} (default {})");
    app_.add_flag("--no-fast", o.no_fast,
                  "no shared-memory fast path: SYNCHMESS_IOCTL_FAST_TICKET\n"
                  "fails ENOTTY and clients use the devices")
        ->check(noted("--no-fast", boolean()));
    app_.add_option("--fast-socket", o.fast_socket,
                    "the fast path's hand-out socket (AF_UNIX\n"
                    "SOCK_SEQPACKET, mode 0666; default\n"
                    "/run/synchmess/fast.sock)")
        ->type_name("PATH")
        ->transform(noted("--fast-socket", absolute_path()));
    number(o.threads, "--threads", Options::largest_threads, "request threads, 1..{} (default: one per core,\nat least 2)");
    app_.add_option("--cluster", o.cluster.servers,
                    "share every group with the other synchmessd of a\n"
                    "NATS JetStream cluster: nats://HOST:PORT, comma-\n"
                    "separated (tls://... for TLS; user:password@ or\n"
                    "token@ before HOST)")
        ->type_name("URL[,URL...]")
        ->check(noted("--cluster", nats_urls()));
    number(o.cluster.replicas, "--cluster-replicas", 5u, "copies of each group's stream, 1..{} (default {})");
    app_.add_option("--cluster-prefix", o.cluster.prefix,
                    "subjects PREFIX.*, streams PREFIX_gN (default\nsynchmess)")
        ->type_name("NAME")
        ->check(noted("--cluster-prefix", token()));
    app_.add_option("--cluster-creds", o.cluster.creds, "NATS credentials file (JWT and NKey seed)")->type_name("FILE");
    app_.add_option("--cluster-tls-ca", o.cluster.tls_ca, "CA certificates: TLS, server verified")->type_name("FILE");
    app_.add_option("--cluster-tls-cert", o.cluster.tls_cert, "client certificate (with --cluster-tls-key)")->type_name("FILE");
    app_.add_option("--cluster-tls-key", o.cluster.tls_key, "client certificate's private key")->type_name("FILE");
    number(o.cluster.timeout_ms, "--cluster-timeout", 60000u,
           "ms a request waits for the cluster before EIO,\n1..{} (default {})");
    app_.set_config("--config", "",
                    "read `name = value` settings (the option names\n"
                    "above without --) before the command line")
        ->type_name("FILE");
  }

  // Parses args into the Options; returns the error message or "".
  std::string parse(const std::vector<std::string>& args) {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11's order
    try {
      app_.parse(reversed);
    } catch (const CLI::CallForHelp&) {
      o_.help = true;
      return "";
    } catch (const CLI::FileError&) {
      return fmt::format("--config: cannot read the configuration file {}", config_->file());
    } catch (const CLI::ParseError& e) {
      return config_->where(failed_) + e.what();
    }
    if (transport_ == "cuse") o_.transport = TransportKind::cuse;
    else if (transport_ == "fuse") o_.transport = TransportKind::fuse;
    else o_.transport = TransportKind::automatic;
    if (o_.fast_socket.size() >= fast_socket_size)
      return fmt::format("{}--fast-socket: {} is too long: {} bytes, at most {} (synchmess_fast_ticket.socket_path)",
                         config_->where("fast-socket"), o_.fast_socket, o_.fast_socket.size(), fast_socket_size - 1);
    if (std::size_t limit = longest_dev_dir(o_.max_groups); o_.dev_dir.size() > limit)
      return fmt::format(
          "{}--dev-dir: {} is too long: {} bytes, at most {} with --max-groups={} (the path of the "
          "last group's device, DIR{}{}, must fit the {}-byte group_t.device_path)",
          config_->where("dev-dir"), o_.dev_dir, o_.dev_dir.size(), limit, o_.max_groups, device_name,
          o_.max_groups, device_path_size);
    return "";
  }

  std::string help() const { return app_.help(); }

 private:
  // A validator that also remembers the option it refused, for where().
  CLI::Validator noted(std::string name, CLI::Validator v) {
    return CLI::Validator(
        [this, name = name.substr(2), v = std::move(v)](std::string& s) {
          std::string error = v(s);
          if (!error.empty()) failed_ = name;
          return error;
        },
        "");
  }

  // Absolute; trailing slashes removed.
  static CLI::Validator absolute_path() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
          if (s.empty() || s[0] != '/') return fmt::format("'{}' is not an absolute path", s);
          while (s.size() > 1 && s.back() == '/') s.pop_back();
          return "";
        },
        "");
  }

  // What CLI11 reads as a flag's value (`--foreground=no`, `foreground = yes`).
  static CLI::Validator boolean() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
          static const char* const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
          for (const char* w : words)
            if (CLI::detail::to_lower(s) == w) return "";
          return fmt::format("'{}' is not true or false", s);
        },
        "");
  }

  // Comma-separated nats:// or tls:// URLs with a host.
  static CLI::Validator nats_urls() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
          std::size_t pos = 0;
          do {
            std::size_t comma = std::min(s.find(',', pos), s.size());
            std::string_view url(s.data() + pos, comma - pos);
            std::size_t scheme = url.find("://");
            std::string_view name = scheme == std::string_view::npos ? "" : url.substr(0, scheme);
            if ((name != "nats" && name != "tls") || url.size() == scheme + 3 ||
                url.find_first_of(" \t") != std::string_view::npos)
              return fmt::format("'{}' is not a nats://HOST:PORT URL", url);
            pos = comma + 1;
          } while (pos <= s.size());
          return "";
        },
        "");
  }

  // Letters, digits, '-' and '_': a NATS subject token and stream name.
  static CLI::Validator token() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
          if (s.empty() || s.size() > 32 ||
              s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != std::string::npos)
            return fmt::format("'{}' is not 1-32 letters, digits, '-' or '_'", s);
          return "";
        },
        "");
  }

  // Decimal only: CLI11 alone would read 010 as octal and 0x10 as hex.
  static CLI::Validator decimal() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
          if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
            return fmt::format("'{}' is not a decimal number", s);
          s.erase(0, std::min(s.find_first_not_of('0'), s.size() - 1));
          return "";
        },
        "");
  }

  template <class T, class Limit>
  void number(T& value, const std::string& name, Limit largest, std::string_view help) {
    app_.add_option(name, value, fmt::format(fmt::runtime(help), largest, value))
        ->type_name("N")
        ->transform(noted(name, decimal()))
        ->check(noted(name, CLI::Range(T{1}, static_cast<T>(largest), "")));
  }

  Options& o_;
  std::string transport_ = "auto";
  std::string failed_;  // the option a validator refused, without "--"
  CLI::App app_{"Serve the SynchMess device ABI: DIR/synchmess and one device per group.", "synchmessd"};
  std::shared_ptr<LineConfig> config_;
};

}  // namespace

std::size_t longest_dev_dir(unsigned max_groups) {
  return device_path_size - 1 - device_name.size() - std::to_string(max_groups).size();
}

ParsedOptions parse_options(const std::vector<std::string>& args) {
  ParsedOptions out;
  Parser parser(out.options);
  out.error = parser.parse(args);
  if (!out.error.empty()) out.options = Options{};  // never a partial configuration
  return out;
}

std::string usage() {
  Options o;
  return Parser(o).help();
}

}  // namespace synchmess
