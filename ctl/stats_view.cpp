#include "stats_view.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace synchmess::ctl {
namespace {

std::string duration(unsigned long long ms) {
  unsigned long long s = ms / 1000;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}d{:02}h{:02}m", s / 86400, s / 3600 % 24, s / 60 % 60);
}

}  // namespace

std::string transport_name(unsigned transport) {
  switch (transport) {
    case SYNCHMESS_TRANSPORT_CUSE: return "cuse";
    case SYNCHMESS_TRANSPORT_FUSE: return "fuse";
    default: return fmt::format("unknown ({})", transport);
  }
}

std::string render_table(const synchmess_stats& d, const std::vector<synchmess_group_stats>& groups) {
  std::string out = fmt::format(
      "synchmessd over {}, up {}; max_message_size {}, max_storage_size {}; {} of {} groups installed\n",
      transport_name(d.transport), duration(d.uptime_ms), d.max_message_size, d.max_storage_size, d.groups,
      d.max_groups);
  static constexpr std::array<const char*, 13> heads = {
      "GROUP", "QUEUED", "Q_BYTES", "DELAYED", "D_BYTES", "DELAY_MS", "SLEEPERS",
      "OPEN",  "SENT",   "RECEIVED", "REVOKED", "FLUSHED", "STORAGE"};
  std::vector<std::array<std::string, heads.size()>> rows;
  for (const auto& g : groups)
    rows.push_back({fmt::format("{}", g.descriptor), fmt::format("{}", g.queued_messages),
                    fmt::format("{}", g.queued_bytes), fmt::format("{}", g.delayed_messages),
                    fmt::format("{}", g.delayed_bytes), fmt::format("{}", g.send_delay_ms),
                    fmt::format("{}", g.sleepers), fmt::format("{}", g.open_files), fmt::format("{}", g.sent),
                    fmt::format("{}", g.received), fmt::format("{}", g.revoked), fmt::format("{}", g.flushed),
                    fmt::format("{}", g.storage_bytes)});
  std::array<std::size_t, heads.size()> width{};
  for (std::size_t c = 0; c < heads.size(); ++c) {
    width[c] = std::string_view(heads[c]).size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](auto cell) {
    std::string l;
    for (std::size_t c = 0; c < heads.size(); ++c) l += fmt::format("{}{:>{}}", c ? "  " : "", cell(c), width[c]);
    return l + "\n";
  };
  out += line([&](std::size_t c) { return std::string(heads[c]); });
  for (const auto& r : rows) out += line([&](std::size_t c) { return r[c]; });
  return out;
}

std::string render_json(const synchmess_stats& d, const std::vector<synchmess_group_stats>& groups) {
  nlohmann::ordered_json j;
  j["version"] = d.version;
  j["transport"] = transport_name(d.transport);
  j["uptime_ms"] = d.uptime_ms;
  j["max_message_size"] = d.max_message_size;
  j["max_storage_size"] = d.max_storage_size;
  j["max_groups"] = d.max_groups;
  j["installed_groups"] = d.groups;
  j["groups"] = nlohmann::ordered_json::array();
  for (const auto& g : groups) {
    j["groups"].push_back({{"descriptor", g.descriptor},
                           {"queued_messages", g.queued_messages},
                           {"queued_bytes", g.queued_bytes},
                           {"delayed_messages", g.delayed_messages},
                           {"delayed_bytes", g.delayed_bytes},
                           {"delay_ms", g.send_delay_ms},
                           {"sleepers", g.sleepers},
                           {"open_files", g.open_files},
                           {"storage_bytes", g.storage_bytes},
                           {"sent", g.sent},
                           {"received", g.received},
                           {"revoked", g.revoked},
                           {"flushed", g.flushed}});
  }
  return j.dump(2) + "\n";
}

}  // namespace synchmess::ctl
