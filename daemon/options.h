// options.h - synchmessd's command line and configuration file.
//
// Contract: parse_options() accepts
//   synchmessd [--transport=cuse|fuse|auto] [--dev-dir=DIR] [--foreground]
//              [--max-groups=N] [--max-message-size=N]
//              [--max-storage-size=N] [--threads=N] [--config=FILE] [--help]
// A config file holds the same settings as `name = value` lines ('#'
// starts a comment); the command line wins over the file.  Bad input gives
// an error message naming the option, never a partial configuration.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/errc.h"

namespace synchmess {

enum class TransportKind { automatic, cuse, fuse };

struct Options {
  TransportKind transport = TransportKind::automatic;
  std::string dev_dir = "/dev/synch";
  bool foreground = false;
  unsigned max_groups = 64;
  std::size_t max_message_size = 1024;
  std::size_t max_storage_size = 1048576;
  unsigned threads = 0;  // 0: one per core, at least 2
  bool help = false;
};

struct ParsedOptions {
  Options options;
  std::string error;  // non-empty: the input was refused
};

ParsedOptions parse_options(const std::vector<std::string>& args);
std::string usage();

}  // namespace synchmess
