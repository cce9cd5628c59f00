#include "requests/stats_requests.h"

#include <cstring>

namespace synchmess {

synchmess_stats daemon_stats(const Registry& registry, const Limits& limits, std::string_view transport,
                             std::chrono::milliseconds uptime) noexcept {
  synchmess_stats s{};
  s.version = SYNCHMESS_STATS_VERSION;
  s.transport = transport == "cuse"   ? SYNCHMESS_TRANSPORT_CUSE
                : transport == "fuse" ? SYNCHMESS_TRANSPORT_FUSE
                                      : 0;
  s.uptime_ms = static_cast<unsigned long long>(std::max<std::int64_t>(uptime.count(), 0));
  s.max_message_size = limits.max_message_size.load(std::memory_order_relaxed);
  s.max_storage_size = limits.max_storage_size.load(std::memory_order_relaxed);
  s.max_groups = registry.max_groups();
  s.groups = registry.installed();
  return s;
}

Result<synchmess_group_stats> group_stats(const Registry& registry, std::span<const std::byte> in) noexcept {
  synchmess_group_stats q{};
  if (in.size() < sizeof q) return fail(Errc::bad_address);
  std::memcpy(&q, in.data(), sizeof q);
  if ((q.flags & ~SYNCHMESS_GROUP_STATS_NEXT) != 0) return fail(Errc::invalid_argument);
  const Group* g = nullptr;
  if (q.flags & SYNCHMESS_GROUP_STATS_NEXT) {
    g = registry.find_from(q.descriptor);
  } else {
    if (!registry.accepts(q.descriptor)) return fail(Errc::bad_descriptor);
    g = registry.find(q.descriptor);
  }
  if (g == nullptr) return fail(Errc::no_such_group);
  const GroupStats s = g->stats();
  synchmess_group_stats out{};
  out.descriptor = g->descriptor();
  out.flags = q.flags;
  out.version = SYNCHMESS_STATS_VERSION;
  out.send_delay_ms = s.send_delay_ms;
  // Counts of things each client holds (threads, files) fit easily.
  out.sleepers = static_cast<unsigned>(s.sleepers);
  out.open_files = static_cast<unsigned>(s.open_files);
  out.queued_messages = s.queued_messages;
  out.queued_bytes = s.queued_bytes;
  out.delayed_messages = s.delayed_messages;
  out.delayed_bytes = s.delayed_bytes;
  out.storage_bytes = s.stored_bytes;
  out.sent = s.sent;
  out.received = s.received;
  out.revoked = s.revoked;
  out.flushed = s.flushed;
  return out;
}

}  // namespace synchmess
