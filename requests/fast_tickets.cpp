#include "requests/fast_tickets.h"

#include <sys/random.h>

#include <cerrno>

namespace synchmess {

namespace {

// A token nobody can predict: the kernel's CSPRNG.  0 is never a token.
bool random_token(std::uint64_t& out) {
  for (int tries = 0; tries < 8; ++tries) {
    ssize_t n = ::getrandom(&out, sizeof out, 0);
    if (n == static_cast<ssize_t>(sizeof out) && out != 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return false;
  }
  return false;
}

}  // namespace

void FastTickets::forget(std::uint32_t uid) {
  auto it = by_uid_.find(uid);
  if (it != by_uid_.end() && --it->second == 0) by_uid_.erase(it);
}

void FastTickets::drop_expired(Clock::time_point now) {
  std::erase_if(tokens_, [&](const auto& kv) {
    if (kv.second.expires > now) return false;
    forget(kv.second.uid);
    return true;
  });
}

Result<std::uint64_t> FastTickets::issue(std::uint32_t uid, unsigned group, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto mine = [&] {
    auto it = by_uid_.find(uid);
    return it == by_uid_.end() ? std::size_t{0} : it->second;
  };
  if (tokens_.size() >= capacity_ || mine() >= per_uid_) drop_expired(now);
  if (tokens_.size() >= capacity_ || mine() >= per_uid_) return fail(Errc::try_again);
  std::uint64_t token = 0;
  do {
    if (!random_token(token)) return fail(Errc::out_of_memory);
  } while (tokens_.contains(token));
  tokens_.emplace(token, Entry{uid, group, now + lifetime_});
  ++by_uid_[uid];
  return token;
}

Result<void> FastTickets::redeem(std::uint64_t token, unsigned group, std::uint32_t uid, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return fail(Errc::access_denied);
  Entry e = it->second;
  tokens_.erase(it);
  forget(e.uid);
  if (e.expires <= now || e.group != group || e.uid != uid) return fail(Errc::access_denied);
  return {};
}

std::size_t FastTickets::outstanding() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

std::size_t FastTickets::outstanding(std::uint32_t uid) const {
  std::lock_guard lock(mu_);
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? 0 : it->second;
}

}  // namespace synchmess
