#include "core/group.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>
#include <utility>

namespace synchmess {

namespace {

// The daemon's pid, recorded in the records it writes or claims (the sweep
// asks whether a record's process is alive; the daemon always is).
std::uint32_t own_pid() noexcept {
  static const std::uint32_t pid = static_cast<std::uint32_t>(::getpid());
  return pid;
}

// How often the read/write path tries again when the ring says BUSY (a
// writer between two steps of the lock-free protocol: nanoseconds unless
// it was stopped or killed there, which the sweep repairs).
// Bounded in time as well: a hostile client can keep a reservation stuck
// (refreshing it as soon as the sweep gives it up), and one device
// operation must not hold a request thread for long (busy_limit).
constexpr int busy_retries = 2000;
constexpr auto busy_limit = std::chrono::milliseconds(20);

// Spins, then yields; false once the operation has tried for busy_limit
// (the clock is read only after the spinning phase, every 16 attempts).
class Busy {
 public:
  explicit Busy(bool patient = true) : patient_(patient) {}
  bool again(int attempt) {
    if (!patient_) return false;
    if (attempt < 16) return true;
    if (attempt % 16 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (start_ == std::chrono::steady_clock::time_point{}) start_ = now;
      else if (now - start_ >= busy_limit) return false;
    }
    std::this_thread::yield();
    return true;
  }

 private:
  std::chrono::steady_clock::time_point start_{};
  bool patient_;
};

void pause(int attempt) {
  if (attempt >= 16) std::this_thread::yield();
}

std::uint64_t holds_for(std::uint64_t max_storage) { return std::max(max_storage, Group::min_segment_holds); }

}  // namespace

Group::Group(boost::asio::any_io_executor executor, const Limits& limits, GroupOptions options)
    : descriptor_(options.descriptor),
      limits_(limits),
      listener_(options.listener),
      delays_(std::move(executor), *this) {
  const std::uint64_t storage = limits_.max_storage_size.load();
  auto s = Segment::create(descriptor_, holds_for(storage), 1, limits_.max_message_size.load(), storage);
  if (!s) throw std::system_error(ENOMEM, std::generic_category(), "group segment");
  current_.store(s->get());
  oldest_.store(s->get());
  first_ = s->get();
  segments_.push_back(std::move(*s));
}

Group::~Group() { delays_.shutdown(); }

std::uint64_t Group::old_readable(const Segment* until) const noexcept {
  std::uint64_t sum = 0;
  for (Segment* s = oldest_.load(std::memory_order_acquire); s != nullptr && s != until;
       s = s->next.load(std::memory_order_acquire)) {
    if (s->abandoned.load(std::memory_order_acquire)) continue;
    std::uint64_t stored = shm_ring_stored(s->ring()), delayed = s->retired_delayed.load(std::memory_order_acquire);
    sum += stored > delayed ? stored - delayed : 0;
  }
  return sum;
}

std::size_t Group::stored_bytes() const noexcept {
  const Segment* cur = current_.load(std::memory_order_acquire);
  return static_cast<std::size_t>(old_readable(cur) + shm_ring_stored(cur->ring()));
}

Result<std::size_t> Group::send(std::span<const std::byte> bytes) { return send(bytes, true); }

Result<std::size_t> Group::try_send(std::span<const std::byte> bytes) {
  if (!bytes.empty() && bytes.size() <= limits_.max_message_size.load(std::memory_order_relaxed) &&
      delays_.delay_ms() == 0 && !shm_ring_writable(current_.load(std::memory_order_acquire)->ring())) {
    return fail(Errc::out_of_memory);
  }
  return send(bytes, false);
}

Result<std::size_t> Group::send(std::span<const std::byte> bytes, bool patient) {
  if (bytes.size() > limits_.max_message_size.load(std::memory_order_relaxed))
    return fail(Errc::message_too_big);
  if (bytes.empty()) return 0;
  maybe_grow();
  if (delays_.delay_ms() == 0) return send_immediate(bytes, patient);

  const std::uint64_t charge = storage_charge(bytes.size());
  MessagePtr m;
  {
    std::lock_guard lock(growth_mu_);
    Segment* s = current_.load(std::memory_order_acquire);
    const std::uint64_t limit = limits_.max_storage_size.load(std::memory_order_relaxed);
    const std::uint64_t extra = old_readable(s);
    if (extra > limit || !shm_ring_charge(s->ring(), charge, limit - extra)) return fail(Errc::storage_full);
    m = Message::create(bytes);
    if (!m) {
      shm_ring_uncharge(s->ring(), charge);
      return fail(Errc::out_of_memory);
    }
    counters_.sent();
    counters_.delaying(bytes.size());
    delayed_charge_.fetch_add(charge, std::memory_order_acq_rel);
    m = delays_.defer(std::move(m));
    if (!m) return bytes.size();
    // The delay became 0 meanwhile: give the charge back and send now.
    delayed_charge_.fetch_sub(charge, std::memory_order_acq_rel);
    counters_.not_delayed(bytes.size());
    counters_.unsent();
    shm_ring_uncharge(s->ring(), charge);
  }
  return send_immediate(bytes, patient);
}

Result<std::size_t> Group::send_immediate(std::span<const std::byte> bytes, bool patient) {
  const std::uint64_t charge = storage_charge(bytes.size());
  // Counted before the message becomes visible, so that a reader never
  // lowers a counter before it was raised.
  counters_.sent();
  counters_.queueing(bytes.size());
  Busy busy(patient);
  for (int attempt = 0; attempt < busy_retries; ++attempt) {
    Segment* s = current_.load(std::memory_order_acquire);
    const std::uint64_t limit = limits_.max_storage_size.load(std::memory_order_relaxed);
    const std::uint64_t extra = old_readable(s);
    if (extra > limit || !shm_ring_charge(s->ring(), charge, limit - extra)) {
      counters_.not_queued(bytes.size());
      counters_.unsent();
      return fail(Errc::storage_full);
    }
    // A stuck newest reservation: not into the ring's own retries (up to
    // 256 sched_yields a call, seconds of a request thread on a loaded
    // machine); one cheap look per attempt here, bounded by busy_limit.
    shm_ring_status st = shm_ring_writable(s->ring())
                             ? shm_ring_write_charged(s->ring(), bytes.data(), bytes.size(), own_pid())
                             : SHM_RING_BUSY;
    if (st == SHM_RING_OK) {
      published();
      return bytes.size();
    }
    shm_ring_uncharge(s->ring(), charge);
    if (st == SHM_RING_RETIRED && !growing_.load(std::memory_order_acquire) &&
        current_.load(std::memory_order_acquire) == s)
      needs_repair_.store(true, std::memory_order_relaxed);  // retired by a scribble
    if (st == SHM_RING_CORRUPT) {
      needs_repair_.store(true, std::memory_order_relaxed);
      break;
    }
    if (!busy.again(attempt)) break;
  }
  // The ring cannot take it now (corrupt, or room held by stopped or
  // hostile clients for longer than busy_limit): ENOMEM, as the module
  // answered when it could not queue a message.
  counters_.not_queued(bytes.size());
  counters_.unsent();
  return fail(Errc::out_of_memory);
}

void Group::advance_oldest(Segment* s) noexcept {
  Segment* next = s->next.load(std::memory_order_acquire);
  if (next != nullptr) oldest_.compare_exchange_strong(s, next, std::memory_order_acq_rel);
}

bool Group::receive_raw(shm_ring_consumer fn, void* ctx) noexcept {
  struct Counted {
    shm_ring_consumer fn;
    void* ctx;
    std::size_t length = 0;
  } counted{fn, ctx};
  auto consume = [](const unsigned char* p, std::size_t n, void* c) {
    auto* k = static_cast<Counted*>(c);
    k->length = n;
    k->fn(p, n, k->ctx);
  };
  int corrupt = 0;
  Busy busy;
  for (int attempt = 0; attempt < busy_retries;) {
    Segment* s = oldest_.load(std::memory_order_acquire);
    Segment* next = s->next.load(std::memory_order_acquire);
    if (next != nullptr && s->abandoned.load(std::memory_order_acquire)) {
      advance_oldest(s);
      continue;
    }
    // A stuck head: not into the ring's own retries (see send_immediate).
    switch (shm_ring_head_busy(s->ring()) ? SHM_RING_BUSY
                                          : shm_ring_read_with(s->ring(), consume, &counted, own_pid())) {
      case SHM_RING_OK:
        counters_.received(counted.length);
        return true;
      case SHM_RING_EMPTY:
        return false;
      case SHM_RING_RETIRED:  // drained: the next segment follows in FIFO order
        if (next != nullptr) {
          advance_oldest(s);
          continue;
        }
        if (!growing_.load(std::memory_order_acquire)) {
          needs_repair_.store(true, std::memory_order_relaxed);  // retired by a scribble
          return false;
        }
        break;  // the growth is linking the next segment
      case SHM_RING_CORRUPT:  // an unreadable record was skipped, or the ring is broken
        if (++corrupt > 8) {
          needs_repair_.store(true, std::memory_order_relaxed);
          return false;
        }
        continue;
      default:  // BUSY
        break;
    }
    if (!busy.again(attempt++)) break;
  }
  return false;
}

MessagePtr Group::receive() noexcept {
  MessagePtr m;
  bool failed = false;
  receive_with([&](std::span<const std::byte> b) {
    m = Message::create(b);
    failed = !m;
  });
  // Out of memory after the message was taken: it is lost, as the kernel
  // module lost a message it could not copy out; this cannot happen on the
  // device path (GroupRequests replies from the segment without a copy).
  (void)failed;
  return m;
}

std::size_t Group::receive_into(std::span<std::byte> out) noexcept {
  std::size_t n = 0;
  receive_with([&](std::span<const std::byte> b) {
    n = std::min(out.size(), b.size());
    if (n > 0) std::memcpy(out.data(), b.data(), n);
  });
  return n;
}

bool Group::readable() const noexcept {
  for (Segment* s = oldest_.load(std::memory_order_acquire); s != nullptr; s = s->next.load(std::memory_order_acquire))
    if (!s->abandoned.load(std::memory_order_acquire) && shm_ring_nonempty(s->ring())) return true;
  return false;
}

Result<void> Group::set_send_delay(unsigned ms) {
  auto r = delays_.set_delay(ms);
  if (r) shm_ring_set_delay(current_.load(std::memory_order_acquire)->ring(), ms);
  return r;
}

std::size_t Group::revoke_delayed() {
  std::size_t n = delays_.revoke();
  counters_.revoked(n);
  return n;
}

std::size_t Group::flush_delayed() {
  std::size_t n = delays_.flush();
  counters_.flushed(n);
  return n;
}

GroupStats Group::stats() const noexcept {
  GroupStats s = counters_.snapshot();
  std::uint64_t messages = 0, bytes = 0;
  for (Segment* g = oldest_.load(std::memory_order_acquire); g != nullptr; g = g->next.load(std::memory_order_acquire)) {
    if (g->abandoned.load(std::memory_order_acquire)) continue;
    std::uint64_t m = 0, b = 0;
    shm_ring_count(g->ring(), &m, &b);
    messages += m;
    bytes += b;
  }
  s.queued_messages = messages;
  s.queued_bytes = bytes;
  // The fast-path clients' writes and reads (hints) on every segment so far.
  for (const Segment* g = first_; g != nullptr; g = g->next.load(std::memory_order_acquire)) {
    std::uint64_t sent = 0, received = 0;
    g->fast_counts(sent, received);
    s.sent += sent;
    s.received += received;
  }
  s.stored_bytes = stored_bytes();
  s.send_delay_ms = delays_.delay_ms();
  s.sleepers = barrier_.sleepers();
  return s;
}

// Under the line's lock (DelaySink): the message's charge is already in
// the current ring's counter (delayed_charge_).
MessagePtr Group::publish(MessagePtr m) noexcept {
  const std::size_t n = m->size();
  Segment* s = current_.load(std::memory_order_acquire);
  counters_.queueing(n);
  shm_ring_status st = shm_ring_write_charged(s->ring(), m->data(), n, own_pid());
  if (st != SHM_RING_OK) {
    counters_.not_queued(n);
    if (st == SHM_RING_CORRUPT || st == SHM_RING_RETIRED) needs_repair_.store(true, std::memory_order_relaxed);
    return m;  // the line keeps it and tries again shortly
  }
  delayed_charge_.fetch_sub(storage_charge(n), std::memory_order_acq_rel);
  counters_.undelayed(n);
  return nullptr;
}

void Group::published() noexcept {
  if (listener_ != nullptr) listener_->on_readable(*this);
}

void Group::discarded(std::size_t bytes) noexcept {
  counters_.undelayed(bytes);
  delayed_charge_.fetch_sub(storage_charge(bytes), std::memory_order_acq_rel);
  shm_ring_uncharge(current_.load(std::memory_order_acquire)->ring(), storage_charge(bytes));
}

Result<FastSegment> Group::fast_segment() {
  Segment* s = current_.load(std::memory_order_acquire);
  if (oldest_.load(std::memory_order_acquire) != s) return fail(Errc::try_again);
  shared_.store(true, std::memory_order_relaxed);
  return FastSegment{s->fd(), s->bytes(), s->generation()};
}

void Group::set_pollers(bool waiting) noexcept {
  std::lock_guard lock(pollers_mu_);
  pollers_.store(waiting, std::memory_order_seq_cst);
  shm_ring_set_pollers(current_.load(std::memory_order_seq_cst)->ring(), waiting ? 1 : 0);
}

std::uint64_t Group::segment_bytes() const noexcept {
  std::uint64_t sum = 0;
  for (Segment* s = oldest_.load(std::memory_order_acquire); s != nullptr; s = s->next.load(std::memory_order_acquire))
    sum += s->bytes();
  return sum;
}

void Group::apply_limits() {
  std::lock_guard lock(growth_mu_);
  Segment* s = current_.load(std::memory_order_acquire);
  shm_ring_set_limits(s->ring(), limits_.max_message_size.load(), limits_.max_storage_size.load());
  if (limits_.max_storage_size.load() > s->holds()) grow();
}

// A bigger segment replaces the current one: the old one is retired (no
// write gets into it any more, so every message in it precedes every
// message of the new one), the delayed charge moves to the new counter,
// and readers go on to the new ring once the old one is drained.
bool Group::grow() {
  bool grown = false;
  delays_.locked([&] {
    Segment* old = current_.load(std::memory_order_acquire);
    const std::uint64_t storage = limits_.max_storage_size.load();
    if (storage <= old->holds()) return;
    auto made = Segment::create(descriptor_, std::max(holds_for(storage), 2 * old->holds()), old->generation() + 1,
                                limits_.max_message_size.load(), storage);
    if (!made) return;  // no memory now: writes are refused at the old size; retried later
    Segment* fresh = made->get();
    shm_ring_set_delay(fresh->ring(), delays_.delay_ms());
    shm_ring_set_pollers(fresh->ring(), pollers_.load(std::memory_order_seq_cst) ? 1 : 0);
    growing_.store(true, std::memory_order_seq_cst);
    shm_ring_status st = SHM_RING_BUSY;
    for (int attempt = 0; attempt < busy_retries && (st = shm_ring_retire(old->ring())) == SHM_RING_BUSY; ++attempt)
      pause(attempt);
    if (st != SHM_RING_OK) {
      growing_.store(false, std::memory_order_seq_cst);
      grow_blocked_.store(true, std::memory_order_relaxed);
      if (st == SHM_RING_CORRUPT) needs_repair_.store(true, std::memory_order_relaxed);
      return;  // a writer stopped between two steps: the sweep retries
    }
    const std::uint64_t delayed = delayed_charge_.load(std::memory_order_acquire);
    old->retired_delayed.store(delayed, std::memory_order_release);
    (void)shm_ring_charge(fresh->ring(), delayed, UINT64_MAX);
    segments_.push_back(std::move(*made));
    old->next.store(fresh, std::memory_order_release);
    current_.store(fresh, std::memory_order_release);
    growing_.store(false, std::memory_order_seq_cst);
    grown = true;
  });
  return grown;
}

// The current ring is corrupt: lay it out again in place (clients keep
// their mapping), its messages lost; the delayed messages stay in the line
// and their charge is applied again.
void Group::repair_current() {
  delays_.locked([&] {
    Segment* s = current_.load(std::memory_order_acquire);
    s->reformat(limits_.max_message_size.load(), limits_.max_storage_size.load());
    shm_ring_set_delay(s->ring(), delays_.delay_ms());
    shm_ring_set_pollers(s->ring(), pollers_.load(std::memory_order_seq_cst) ? 1 : 0);
    (void)shm_ring_charge(s->ring(), delayed_charge_.load(std::memory_order_acquire), UINT64_MAX);
    needs_repair_.store(false, std::memory_order_relaxed);
  });
}

SweepReport Group::sweep(std::uint64_t now_ms, std::uint64_t stall_ms, int (*alive)(std::uint32_t, void*),
                         void* ctx) {
  SweepReport report;
  std::lock_guard lock(growth_mu_);
  Segment* cur = current_.load(std::memory_order_acquire);
  shm_ring_set_limits(cur->ring(), limits_.max_message_size.load(), limits_.max_storage_size.load());
  shm_ring_set_delay(cur->ring(), delays_.delay_ms());
  bool restored = false;
  {
    // A client may clear (or set) the flag: publish the daemon's own state
    // again, so a fast writer kicks when a device poller waits.
    std::lock_guard plock(pollers_mu_);
    const bool waiting = pollers_.load(std::memory_order_seq_cst);
    restored = waiting && !shm_ring_pollers(cur->ring());
    shm_ring_set_pollers(cur->ring(), waiting ? 1 : 0);
  }
  // A fast writer may have published while the flag read clear (and so
  // not kicked): wake the pollers if there is something to read.
  if (restored && readable()) published();
  for (Segment* s = oldest_.load(std::memory_order_acquire); s != nullptr; s = s->next.load(std::memory_order_acquire)) {
    if (s->abandoned.load(std::memory_order_acquire)) continue;
    const bool current = s == cur;
    const std::uint64_t outside =
        current ? delayed_charge_.load(std::memory_order_acquire) : s->retired_delayed.load(std::memory_order_acquire);
    unsigned repaired = 0;
    shm_ring_status st = shm_ring_sweep(s->ring(), &s->sweep, now_ms, stall_ms, outside, alive, ctx, &repaired);
    report.repaired += repaired;
    // A current ring that reads as retired was scribbled (only grow() retires).
    if (current && shm_ring_retired(s->ring())) st = SHM_RING_CORRUPT;
    if (st != SHM_RING_CORRUPT && !(current && needs_repair_.load(std::memory_order_relaxed))) continue;
    if (current && st != SHM_RING_CORRUPT) {
      // A daemon operation saw corruption the sweep did not: look again
      // next time rather than throw messages away on a hint.
      needs_repair_.store(false, std::memory_order_relaxed);
      continue;
    }
    if (current) {
      repair_current();
      report.reformatted = true;
    } else {
      s->abandoned.store(true, std::memory_order_release);
      report.abandoned = true;
    }
  }
  // Segments drained and passed over by the readers give their pages back
  // once no reader copies out of them any more.
  Segment* oldest = oldest_.load(std::memory_order_acquire);
  for (auto& s : segments_) {
    if (s.get() == oldest) break;
    if (!s->released && (s->abandoned.load() || shm_ring_idle(s->ring()))) s->release_data();
  }
  grow_blocked_.store(false, std::memory_order_relaxed);
  if (limits_.max_storage_size.load() > cur->holds()) grow();
  report.generation = current_.load(std::memory_order_acquire)->generation();
  return report;
}

void Group::shutdown() {
  barrier_.shutdown();
  delays_.shutdown();
}

}  // namespace synchmess
