// stats_view.h - synchmessctl stats: the statistics as a table or as JSON.
//
// Contract: render_table() gives a summary line of the daemon and one
// right-aligned row per group (columns: docs/abi.md "Statistics",
// synchmessctl(1)); render_json() gives one JSON object (nlohmann-json)
// with the daemon's fields and "groups", a list of one object per group.
// Both take the structs as the service returned them and end with a
// newline.  Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "synchmess_stats.h"

namespace synchmess::ctl {

// "cuse", "fuse", or "unknown (N)".
std::string transport_name(unsigned transport);
std::string render_table(const synchmess_stats& daemon, const std::vector<synchmess_group_stats>& groups);
std::string render_json(const synchmess_stats& daemon, const std::vector<synchmess_group_stats>& groups);

}  // namespace synchmess::ctl
