// options.h - synchmessd's command line and configuration file (CLI11).
//
// Contract: parse_options() accepts
//   synchmessd [--transport=cuse|fuse|auto] [--dev-dir=DIR] [--foreground]
//              [--no-modprobe] [--max-groups=N] [--max-message-size=N]
//              [--max-storage-size=N] [--threads=N] [--config=FILE] [--help]
//              [--cluster=URL[,URL...]] [--cluster-replicas=N]
//              [--cluster-prefix=NAME] [--cluster-creds=FILE]
//              [--cluster-tls-ca=FILE] [--cluster-tls-cert=FILE]
//              [--cluster-tls-key=FILE] [--cluster-timeout=MS]
//              [--no-fast] [--fast-socket=PATH]
// (also `--name value`, and -h).  A config file holds the same settings as
// `name = value` lines, option names without the dashes ('#' starts a
// comment; quotes around a value are removed); the command line wins over the
// file; a repeated option takes its last value.  Bad input gives one error
// message naming the option (and FILE:LINE for a value from the file), never a
// partial configuration.  --dev-dir is refused when the longest device path,
// DIR/synchmessN with N = max-groups, does not fit group_t.device_path.
// --fast-socket must be absolute and shorter than the 96 bytes of
// synchmess_fast_ticket.socket_path.  usage() is the --help text.
// Thread safety: both are pure functions of their input (and the file).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cluster/cluster_options.h"
#include "core/errc.h"
#include "core/registry.h"
#include "core/size_limits.h"

namespace synchmess {

enum class TransportKind { automatic, cuse, fuse };

// The defaults and ranges of the limits are core's (RegistryOptions, Limits).
struct Options {
  static constexpr unsigned largest_threads = 64;

  TransportKind transport = TransportKind::automatic;
  std::string dev_dir = "/dev/synch";
  bool foreground = false;
  bool no_modprobe = false;  // never run `modprobe cuse`: a missing /dev/cuse is final
  unsigned max_groups = RegistryOptions::default_max_groups;
  std::size_t max_message_size = Limits::default_max_message_size;
  std::size_t max_storage_size = Limits::default_max_storage_size;
  unsigned threads = 0;  // 0: one per core, at least 2; at most largest_threads
  bool help = false;
  bool no_fast = false;  // FAST_TICKET fails ENOTTY: no segment is handed out
  std::string fast_socket = "/run/synchmess/fast.sock";
  ClusterOptions cluster;  // cluster.servers empty: no cluster
};

struct ParsedOptions {
  Options options;
  std::string error;  // non-empty: the input was refused
};

ParsedOptions parse_options(const std::vector<std::string>& args);
std::string usage();

// The longest --dev-dir accepted with this max-groups: DIR + "/synchmess" +
// the digits of max_groups + NUL must fit group_t.device_path (256 bytes).
std::size_t longest_dev_dir(unsigned max_groups);

}  // namespace synchmess
