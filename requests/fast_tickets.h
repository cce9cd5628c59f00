// fast_tickets.h - the one-time tokens of the fast path's hand-out.
//
// Contract (docs/abi.md "Fast path"):
//  - issue(uid, group, now): a new random 64-bit token (getrandom) for that
//    caller and group, valid for `lifetime` from now; Errc::try_again when
//    `capacity` unexpired tokens are outstanding, or `per_uid` of that uid
//    (expired ones are dropped first), so a local user can neither grow the
//    table without bound nor fill it for the others (a user with many uids
//    takes per_uid per uid).
//  - redeem(token, group, uid, now): succeeds once for an unexpired token
//    issued for that group and uid, and forgets it.  Any other case is
//    Errc::access_denied (EACCES): unknown, used, expired,
//    other group; a token presented by another uid is also forgotten (one
//    try), so it cannot be guessed at from a second account.
// Thread safety: every member may be called from any thread (one mutex,
// never on the read/write path).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "core/errc.h"

namespace synchmess {

class FastTickets {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t default_capacity = 4096;
  static constexpr std::size_t default_per_uid = 64;
  static constexpr std::chrono::seconds default_lifetime{10};

  explicit FastTickets(std::size_t capacity = default_capacity,
                       Clock::duration lifetime = default_lifetime,
                       std::size_t per_uid = default_per_uid)
      : capacity_(capacity), per_uid_(per_uid), lifetime_(lifetime) {}

  Result<std::uint64_t> issue(std::uint32_t uid, unsigned group, Clock::time_point now);
  Result<void> redeem(std::uint64_t token, unsigned group, std::uint32_t uid, Clock::time_point now);
  std::size_t outstanding() const;
  std::size_t outstanding(std::uint32_t uid) const;

 private:
  struct Entry {
    std::uint32_t uid;
    unsigned group;
    Clock::time_point expires;
  };
  void drop_expired(Clock::time_point now);  // needs mu_
  void forget(std::uint32_t uid);             // needs mu_: one token of uid gone

  const std::size_t capacity_;
  const std::size_t per_uid_;
  const Clock::duration lifetime_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Entry> tokens_;
  std::unordered_map<std::uint32_t, std::size_t> by_uid_;  // tokens_ per uid, no zero entries
};

}  // namespace synchmess
