#include "cluster/cluster_groups.h"

#include <nats/nats.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "requests/log.h"
#include "requests/master_requests.h"

namespace synchmess {

namespace {

constexpr std::chrono::milliseconds retry_pause{20};
constexpr std::size_t header_room = 256;
// How long the claims of a group's messages are kept (the claims stream's
// max_age): far above a read's deadline and the time its winner takes to
// delete the message (read_job's comment says why both matter).
constexpr std::chrono::minutes claim_keep_min{5};
constexpr unsigned claim_keep_deadlines = 30;  // or this many --cluster-timeout, if longer
// Reads given up undecided (their claim's outcome unknown at the deadline)
// kept for the next read on this host to settle: at most this many.
constexpr std::size_t max_undecided = 1024;
// A claimed message still the group's oldest this long after the sweep
// (upkeep_loop) first saw it there is deleted by that host (its reader died
// before it could: read_job).
constexpr std::chrono::seconds sweep_every{2};
// The upkeep thread's period: the failed deletes of won reads retried, the
// bound groups swept.
constexpr std::chrono::seconds upkeep_every{1};
// Won reads whose delete failed, kept per group for the upkeep thread to
// retry: at most this many (each a sequence number; a read adds one only
// after its claim was stored, so only a cluster that stores claims but
// refuses deletes fills it).
constexpr std::size_t max_pending_deletes = 65536;
constexpr std::chrono::seconds heartbeat_every{1};
constexpr std::chrono::milliseconds host_alive{3500};

std::uint64_t random_host_id() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

std::string status_text(natsStatus st) {
  std::string t = natsStatus_GetText(st);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') t += fmt::format(" ({})", last);
  return t;
}

void on_disconnected(natsConnection*, void* self) {
  static_cast<ClusterGroups*>(self)->connection_changed(false, "disconnected");
}
void on_read_connected(natsConnection*, void*) {}  // reads_connected() asks the connection
void on_reconnected(natsConnection*, void* self) {
  static_cast<ClusterGroups*>(self)->connection_changed(true, "reconnected");
}
void on_connected(natsConnection*, void* self) {
  static_cast<ClusterGroups*>(self)->connection_changed(true, "connected");
}
void on_closed(natsConnection*, void* self) {
  static_cast<ClusterGroups*>(self)->connection_changed(false, "closed");
}
void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
  static_cast<ClusterGroups*>(self)->on_message(m);
  natsMsg_Destroy(m);
}
void on_ctl(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
  static_cast<ClusterGroups*>(self)->on_control(m);
  natsMsg_Destroy(m);
}
void on_hb(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
  static_cast<ClusterGroups*>(self)->on_host(m);
  natsMsg_Destroy(m);
}

// Owns a natsMsg.
struct MsgPtr {
  natsMsg* m = nullptr;
  ~MsgPtr() { natsMsg_Destroy(m); }
};

long remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return std::max<long>(left, 0);
}

// One attempt's timeout: a lost request (no leader, a server that went
// away) is sent again rather than waited for until the deadline.
long attempt_ms(std::chrono::steady_clock::time_point deadline) {
  return std::clamp(remaining_ms(deadline), 1L, 500L);
}

}  // namespace

struct ClusterGroups::State {
  std::mutex mu;  // bind
  bool bound = false;
  // subject: readable messages; held_subject: the copies of the delayed
  // messages (same length, so a copy is charged what its message is).
  std::string stream, subject, held_subject;
  // The claims of the readable messages: stream claims_stream, one subject
  // claim_prefix<seq> per message (read_job).  get, claims_get: the
  // streams' STREAM.MSG.GET API subjects.
  std::string claims_stream, claim_prefix, claims_subjects, get, claims_get;
  // Reads on this host (read_mu): every message below next_seq was handed
  // to a read here and is claimed (by whichever host) or in undecided.
  std::mutex read_mu;
  std::uint64_t next_seq = 1;
  struct Undecided {
    std::string token;
    std::vector<std::byte> bytes;
    Clock::time_point since;
  };
  std::map<std::uint64_t, Undecided> undecided;  // by message sequence
  // Messages read here whose delete failed (pending_mu): retried by the
  // upkeep thread until deleted or gone.
  std::mutex pending_mu;
  std::set<std::uint64_t> pending_deletes;
  // The sweep (upkeep thread only): the oldest message, since when.
  std::uint64_t sweep_seq = 0;
  Clock::time_point sweep_since{};
  // The stream sequences of this host's copies of its delayed messages, in
  // the order of the core group's delayed messages (sends, then matured
  // and not yet moved).  Pushed before the send, under held_mu.
  std::mutex held_mu;
  std::deque<std::uint64_t> held;
  std::atomic<bool> maybe_readable{true};
  std::atomic<std::uint64_t> arrivals{0};
  bool queued = false;  // mover_mu_: in mover_queue_
  bool moving = false;  // mover_mu_: the mover holds one of its messages
};

ClusterGroups::ClusterGroups(ClusterOptions options, Limits& limits, GroupListener& pollers)
    : options_(std::move(options)), limits_(limits), pollers_(pollers), host_id_(random_host_id()) {}

ClusterGroups::~ClusterGroups() { stop(); }

Result<void> ClusterGroups::start(Registry& registry, std::string& error) {
  registry_ = &registry;
  max_groups_ = registry.max_groups();
  states_ = std::make_unique<std::atomic<State*>[]>(max_groups_ + 1);
  for (unsigned d = 0; d <= max_groups_; ++d) states_[d].store(nullptr, std::memory_order_relaxed);

  std::vector<std::string> urls;
  for (std::size_t pos = 0; pos <= options_.servers.size();) {
    std::size_t comma = options_.servers.find(',', pos);
    if (comma == std::string::npos) comma = options_.servers.size();
    if (comma > pos) urls.push_back(options_.servers.substr(pos, comma - pos));
    pos = comma + 1;
  }
  std::vector<const char*> url_ptrs;
  for (auto& u : urls) url_ptrs.push_back(u.c_str());

  natsOptions* o = nullptr;
  natsStatus st = natsOptions_Create(&o);
  auto check = [&](natsStatus s, const char* what) {
    if (s == NATS_OK) return true;
    error = fmt::format("--cluster: {}: {}", what, status_text(s));
    return false;
  };
  bool ok = check(st, "options") &&
            check(natsOptions_SetServers(o, url_ptrs.data(), static_cast<int>(url_ptrs.size())), "server list") &&
            check(natsOptions_SetName(o, "synchmessd"), "name") &&
            check(natsOptions_SetTimeout(o, options_.timeout_ms), "timeout") &&
            check(natsOptions_SetMaxReconnect(o, -1), "reconnect") &&
            check(natsOptions_SetReconnectWait(o, 250), "reconnect wait") &&
            check(natsOptions_SetPingInterval(o, 1000), "ping interval") &&
            check(natsOptions_SetMaxPingsOut(o, 2), "pings") &&
            check(natsOptions_SetFailRequestsOnDisconnect(o, true), "fail requests") &&
            check(natsOptions_SetRetryOnFailedConnect(o, true, on_connected, this), "retry") &&
            check(natsOptions_SetDisconnectedCB(o, on_disconnected, this), "callback") &&
            check(natsOptions_SetReconnectedCB(o, on_reconnected, this), "callback") &&
            check(natsOptions_SetClosedCB(o, on_closed, this), "callback");
  if (ok && !options_.creds.empty())
    ok = check(natsOptions_SetUserCredentialsFromFiles(o, options_.creds.c_str(), nullptr), "credentials file");
  if (ok && !options_.tls_ca.empty())
    ok = check(natsOptions_SetSecure(o, true), "TLS") &&
         check(natsOptions_LoadCATrustedCertificates(o, options_.tls_ca.c_str()), "TLS CA file");
  if (ok && !options_.tls_cert.empty())
    ok = check(natsOptions_LoadCertificatesChain(o, options_.tls_cert.c_str(), options_.tls_key.c_str()),
               "TLS certificate");
  if (ok) {
    st = natsConnection_Connect(&nc_, o);
    if (st == NATS_OK) {
      connection_changed(true, "connected");
    } else if (st == NATS_NOT_YET_CONNECTED) {
      log::warn("cluster: no NATS server of {} answers yet; requests fail with EIO until one does", options_.servers);
    } else {
      ok = check(st, "connect");
    }
  }
  // Reads have a connection of their own, with the old request style (one
  // inbox subscription per request): with libnats 3.4.1's shared response
  // subscription, the answers to pull requests were lost while other
  // requests ran at the same time (measured: every fetch timed out).
  if (ok)
    // A callback, or libnats retries the connect inline, forever.
    ok = check(natsOptions_SetRetryOnFailedConnect(o, true, on_read_connected, this), "retry") &&
         check(natsOptions_SetDisconnectedCB(o, nullptr, nullptr), "callback") &&
         check(natsOptions_SetReconnectedCB(o, nullptr, nullptr), "callback") &&
         check(natsOptions_SetClosedCB(o, nullptr, nullptr), "callback") &&
         check(natsOptions_SetName(o, "synchmessd-reads"), "name") &&
         check(natsOptions_UseOldRequestStyle(o, true), "request style");
  if (ok) {
    st = natsConnection_Connect(&read_nc_, o);
    if (st != NATS_OK && st != NATS_NOT_YET_CONNECTED) ok = check(st, "connect");
  }
  natsOptions_Destroy(o);
  if (!ok) return fail(Errc::invalid_argument);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.timeout_ms;
  if (!check(natsConnection_JetStream(&js_, nc_, &jo), "JetStream context")) return fail(Errc::invalid_argument);
  std::string p = options_.prefix;
  if (!check(natsConnection_Subscribe(&msg_sub_, nc_, (p + ".msg.*").c_str(), on_msg, this), "subscribe") ||
      !check(natsConnection_Subscribe(&ctl_sub_, nc_, (p + ".ctl").c_str(), on_ctl, this), "subscribe") ||
      !check(natsConnection_Subscribe(&host_sub_, nc_, (p + ".hosts").c_str(), on_hb, this), "subscribe"))
    return fail(Errc::invalid_argument);
  // Every host's copy of every message: never drop them for a slow poller.
  natsSubscription_SetPendingLimits(msg_sub_, -1, -1);
  pool_ = std::make_unique<WorkPool>(options_.workers, 4096);
  mover_ = std::thread([this] { mover_loop(); });
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
  upkeep_ = std::thread([this] { upkeep_loop(); });
  log::info("cluster: groups are JetStream streams {}_g<N> on {} ({} replicas), host id {:016x}", p,
            options_.servers, options_.replicas, host_id_);
  return {};
}

void ClusterGroups::stop() {
  if (stopping_.exchange(true)) return;
  if (pool_) pool_->stop();
  mover_cv_.notify_all();
  hosts_cv_.notify_all();
  if (mover_.joinable()) mover_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (upkeep_.joinable()) upkeep_.join();
  for (natsSubscription* s : {msg_sub_, ctl_sub_, host_sub_}) {
    if (s == nullptr) continue;
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
  }
  if (kv_ != nullptr) kvStore_Destroy(kv_);
  kv_ = nullptr;
  if (js_ != nullptr) jsCtx_Destroy(js_);
  for (natsConnection* c : {read_nc_, nc_}) {
    if (c == nullptr) continue;
    natsConnection_Close(c);
    natsConnection_Destroy(c);
  }
  nc_ = nullptr;
  read_nc_ = nullptr;
  js_ = nullptr;
  if (states_)
    for (unsigned d = 0; d <= max_groups_; ++d) delete states_[d].exchange(nullptr);
  // The library's own threads (delivery, timers) end here.
  nats_CloseAndWait(static_cast<int64_t>(options_.timeout_ms));
}

void ClusterGroups::connection_changed(bool up, const char* what) noexcept {
  bool was = connected_.exchange(up);
  if (stopping_.load()) return;
  if (up && !was) {
    const char* url = "?";
    char buf[256];
    if (nc_ != nullptr && natsConnection_GetConnectedUrl(nc_, buf, sizeof buf) == NATS_OK) url = buf;
    log::info("cluster: {} to {}", what, url);
    // Messages may have arrived while we were away: pollers look again.
    if (states_)
      for (unsigned d = 1; d <= max_groups_; ++d)
        if (State* s = states_[d].load(std::memory_order_acquire)) {
          s->maybe_readable.store(true);
          s->arrivals.fetch_add(1);
          if (Group* g = registry_->find(d)) pollers_.on_readable(*g);
        }
  } else if (!up && was) {
    log::warn("cluster: {}; requests fail with EIO until a NATS server answers again", what);
  }
}

bool ClusterGroups::reads_connected() const noexcept {
  return read_nc_ != nullptr && natsConnection_Status(read_nc_) == NATS_CONN_STATUS_CONNECTED;
}

ClusterGroups::State* ClusterGroups::state(unsigned d) {
  if (State* s = states_[d].load(std::memory_order_acquire)) return s;
  std::lock_guard lock(states_mu_);
  State* s = states_[d].load(std::memory_order_acquire);
  if (s == nullptr) {
    s = new State;
    s->stream = fmt::format("{}_g{}", options_.prefix, d);
    s->subject = fmt::format("{}.msg.{}", options_.prefix, d);
    s->held_subject = fmt::format("{}.dly.{}", options_.prefix, d);
    s->claims_stream = fmt::format("{}_c{}", options_.prefix, d);
    s->claim_prefix = fmt::format("{}.claim.{}.", options_.prefix, d);
    s->claims_subjects = s->claim_prefix + "*";
    s->get = "$JS.API.STREAM.MSG.GET." + s->stream;
    s->claims_get = "$JS.API.STREAM.MSG.GET." + s->claims_stream;
    states_[d].store(s, std::memory_order_release);
  }
  return s;
}

// Creates or binds the stream and the shared consumer.  JetStream's create
// calls are idempotent for an identical configuration; a stream made by a
// host with other limits is used as it is (logged).
Result<void> ClusterGroups::bind(State& s, unsigned d) {
  std::lock_guard lock(s.mu);
  if (s.bound) return {};
  if (!connected_.load()) return fail(Errc::cluster_unavailable);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {s.subject.c_str(), s.held_subject.c_str()};
  cfg.Name = s.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 2;
  cfg.Retention = js_WorkQueuePolicy;
  cfg.MaxBytes = static_cast<int64_t>(limits_.max_storage_size.load());
  // JetStream counts the headers (the message id) too; the exact limit on
  // the payload (the current max_message_size) is checked by write().
  // The largest size allowed at all: IOCTL_SET_PARAMS may raise the limit.
  cfg.MaxMsgSize = static_cast<int32_t>(Limits::largest_max_message_size + header_room);
  cfg.Discard = js_DiscardNew;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = options_.replicas;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.timeout_ms;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_AddStream(nullptr, js_, &cfg, &jo, &jerr);
  if (st != NATS_OK && jerr == JSStreamNameExistErr) {
    // Made by another host with other limits, or by a version without the
    // held subject: its limits are kept, the subjects made ours.
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js_, s.stream.c_str(), &jo, &jerr) == NATS_OK) {
      bool has_held = false;
      for (int i = 0; i < si->Config->SubjectsLen; ++i) has_held |= s.held_subject == si->Config->Subjects[i];
      if (!has_held) {
        auto* own = si->Config->Subjects;  // freed by jsStreamInfo_Destroy: put back before
        int own_len = si->Config->SubjectsLen;
        si->Config->Subjects = subjects;
        si->Config->SubjectsLen = 2;
        st = js_UpdateStream(nullptr, js_, si->Config, &jo, &jerr);
        si->Config->Subjects = own;
        si->Config->SubjectsLen = own_len;
        if (st != NATS_OK)
          log::limited_warn("cluster: stream {}: subject {} not added: {}", s.stream, s.held_subject, status_text(st));
      }
      jsStreamInfo_Destroy(si);
    }
    log::warn("cluster: stream {} exists with another configuration (limits set by another host); using it", s.stream);
  } else if (st != NATS_OK) {
    log::limited_warn("cluster: cannot create stream {}: {} (JetStream error {})", s.stream, status_text(st),
                      static_cast<int>(jerr));
    return fail(Errc::cluster_unavailable);
  }
  // The claims (read_job): limits retention, kept claim_keep; created
  // alike by every host (idempotent).
  jsStreamConfig cc;
  jsStreamConfig_Init(&cc);
  const char* claim_subjects[] = {s.claims_subjects.c_str()};
  cc.Name = s.claims_stream.c_str();
  cc.Subjects = claim_subjects;
  cc.SubjectsLen = 1;
  cc.Retention = js_LimitsPolicy;
  cc.Storage = js_FileStorage;
  cc.Replicas = options_.replicas;
  cc.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(claim_keep()).count();
  jerr = static_cast<jsErrCode>(0);
  st = js_AddStream(nullptr, js_, &cc, &jo, &jerr);
  if (st != NATS_OK && jerr != JSStreamNameExistErr) {
    log::limited_warn("cluster: cannot create stream {}: {} (JetStream error {})", s.claims_stream, status_text(st),
                      static_cast<int>(jerr));
    return fail(Errc::cluster_unavailable);
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  // Poll's hint: false when the group is empty now.
  std::uint64_t seen = s.arrivals.load();
  if (confirmed_empty(s, deadline)) {
    std::uint64_t expected = seen;
    if (s.arrivals.compare_exchange_strong(expected, seen)) s.maybe_readable.store(false);
  }
  learn_delay(d);
  s.bound = true;
  log::info("cluster: group {} bound to stream {}", d, s.stream);
  return {};
}

__kvStore* ClusterGroups::delays() {
  std::lock_guard lock(kv_mu_);
  if (kv_ != nullptr || !connected_.load()) return kv_;
  std::string bucket = options_.prefix + "_delays";
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = bucket.c_str();
  kc.History = 1;
  kc.StorageType = js_FileStorage;
  kc.Replicas = static_cast<int>(options_.replicas);
  natsStatus st = js_CreateKeyValue(&kv_, js_, &kc);
  if (st != NATS_OK) {
    kv_ = nullptr;
    st = js_KeyValue(&kv_, js_, bucket.c_str());  // made by another host with other settings
    if (st != NATS_OK) {
      kv_ = nullptr;
      log::limited_warn("cluster: no key-value bucket {}: {}", bucket, status_text(st));
    }
  }
  return kv_;
}

void ClusterGroups::learn_delay(unsigned d) {
  Group* g = registry_->find(d);
  kvStore* kv = delays();
  if (g == nullptr || kv == nullptr) return;
  kvEntry* e = nullptr;
  natsStatus st = kvStore_Get(&e, kv, fmt::format("g{}", d).c_str());
  if (st == NATS_NOT_FOUND) return;  // never set: 0
  if (st != NATS_OK) {
    log::limited_warn("cluster: group {}: send delay not read from the cluster: {}", d, status_text(st));
    return;
  }
  unsigned ms = 0;
  const char* v = kvEntry_ValueString(e);
  std::from_chars(v, v + std::strlen(v), ms);
  kvEntry_Destroy(e);
  if (g->send_delay() == ms) return;
  if (auto r = g->set_send_delay(ms); !r)
    log::warn("cluster: group {}: send delay {} ms of the cluster not applied here: {}", d, ms, describe(r.error()));
}

void ClusterGroups::post(Reply reply, std::move_only_function<void(unsigned, Reply&)> job) {
  auto r = std::make_shared<Reply>(std::move(reply));
  bool queued = pool_->post({.run = [r, j = std::move(job)](unsigned t) mutable { j(t, *r); },
                             .cancel = [r] { r->fail(Errc::shutting_down); }});
  if (!queued) r->fail(stopping_.load() ? Errc::shutting_down : Errc::try_again);
}

// The open waits for the bind (a pool thread): the first open of a group on
// this host learns its send delay (learn_delay) and whether it is empty
// (poll), so that the opener's first request sees them.  The open succeeds
// even when the cluster is away: its requests then fail EIO.
// Every open also looks whether the group is empty now (another host's
// reader may have taken the messages this host was told about) and reads
// the delay again (a broadcast missed while disconnected).
void ClusterGroups::open(Group& g, Reply reply, const fuse_file_info& fi) {
  State* s = state(g.descriptor());
  unsigned d = g.descriptor();
  post(std::move(reply), [this, s, d, fi](unsigned, Reply& r) {
    bool was_bound;
    {
      std::lock_guard lock(s->mu);
      was_bound = s->bound;
    }
    if (bind(*s, d) && was_bound) {
      learn_delay(d);
      std::uint64_t seen = s->arrivals.load();
      if (s->maybe_readable.load() &&
          confirmed_empty(*s, Clock::now() + std::chrono::milliseconds(options_.timeout_ms))) {
        std::uint64_t expected = seen;
        if (s->arrivals.compare_exchange_strong(expected, seen)) s->maybe_readable.store(false);
      }
    }
    r.open(fi);
  });
}

bool ClusterGroups::readable(Group& g) noexcept {
  return state(g.descriptor())->maybe_readable.load() || g.readable();
}

void ClusterGroups::read(Group& g, Reply reply, std::size_t size) {
  post(std::move(reply), [this, &g, size](unsigned t, Reply& r) { read_job(g, r, size, t); });
}

ClusterGroups::Clock::duration ClusterGroups::claim_keep() const {
  return std::max<Clock::duration>(claim_keep_min, claim_keep_deadlines * std::chrono::milliseconds(options_.timeout_ms));
}

// A read takes the oldest message that no read has claimed, by claiming
// it: it appends a claim (its own random token) to the claims stream, on
// the message's own subject (claim_prefix<seq>), and the FIRST claim on
// that subject decides who reads the message.  Only JetStream's replicated
// log is relied on (no consumer, no conditional publish):
//  - exactly once: a stream's messages are never reordered, and a claim is
//    never removed before claim_keep, so every replica that holds any claim
//    of a message shows the same first one; every reader compares that one
//    with its token, and only one token matches.  A claim whose answer was
//    lost is published again (a second claim of ours is harmless: only the
//    first counts) and the first claim read back tells the outcome, which
//    an ambiguous delete (the design before) could not.
//  - no loss: a message is taken only by the host whose token is first;
//    a read that cannot learn the outcome before its deadline fails EIO
//    and keeps its token and the message's bytes (undecided): the next
//    read on this host settles it first (delivers it if the claim is ours),
//    so only a daemon that dies (or is SIGKILLed) with reads undecided or
//    claimed and not answered loses those messages.
//  - per-group FIFO: reads on a host are handed the messages in sequence
//    order (next_seq, under read_mu); a message claimed by another host
//    is skipped, one given up undecided is settled before any later one.
//  - the winner deletes the message, then answers (its room is free when
//    the read returns); a delete that fails by the deadline is kept
//    (pending_deletes) and retried every upkeep_every by the upkeep thread,
//    with a deadline of its own, until the message is gone.  Every host's
//    upkeep thread also sweeps every bound group: the oldest message, if
//    claimed and still the oldest sweep_every later, is deleted (its
//    winner died first).  A claimed message must be gone before its claim
//    expires (claim_keep, at least 5 minutes), or it would be read again:
//    only if its winner and every other host were cut off from the
//    cluster that long (or every host died).
// Cost: four round trips: the message's fetch (the stream leader), the
// claim (replicated), the first claim read back (the claims' leader), the
// delete (replicated) with, at the same time, a look whether more messages
// follow (poll's hint).
void ClusterGroups::read_job(Group& g, Reply& reply, std::size_t size, unsigned) {
  unsigned d = g.descriptor();
  State& s = *state(d);
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  if (!bind(s, d)) return reply.fail(Errc::cluster_unavailable);
  std::string last_status;
  for (;;) {
    if (stopping_.load()) return reply.fail(Errc::shutting_down);
    // Its caller gone (a signal, a kill): nothing taken for it.  Before the
    // fetch, so that no message is passed here for a read that will not
    // claim it.
    if (reply.interrupted()) return reply.fail(Errc::interrupted);
    std::uint64_t seen = s.arrivals.load();
    std::uint64_t seq = 0;
    State::Undecided c;
    Got found = Got::failed;
    {
      std::lock_guard lock(s.read_mu);
      if (auto u = s.undecided.begin(); u != s.undecided.end()) {
        seq = u->first;
        c = std::move(u->second);
        s.undecided.erase(u);
        found = Got::found;
        if (Clock::now() - c.since > claim_keep() / 2) {
          log::limited_warn("cluster: group {}: message {} whose read was given up undecided is lost (too old to settle)",
                            d, seq);
          continue;
        }
      } else {
        found = get_next(s.get, s.subject, s.next_seq, deadline, seq, &c.bytes);
        if (found == Got::found) {
          s.next_seq = seq + 1;
          c.token = fmt::format("{:016x}-{:016x}", host_id_, next_msg_id_.fetch_add(1));
          c.since = Clock::now();
        }
      }
    }
    if (found == Got::none) {
      std::uint64_t expected = seen;
      if (s.arrivals.compare_exchange_strong(expected, seen)) s.maybe_readable.store(false);
      return reply.data({});
    }
    if (found == Got::found) {
      switch (claim(s, seq, c.token, deadline)) {
        case Claim::mine: {
          // Its room freed before the answer (a write right after the read
          // of a full group fits).  None follows, and none arrived since:
          // poll says empty.
          if (!delete_and_look_ahead(s, seq, deadline)) {
            std::uint64_t expected = seen;
            if (s.arrivals.compare_exchange_strong(expected, seen)) s.maybe_readable.store(false);
          }
          return reply.data(std::span(c.bytes).first(std::min(size, c.bytes.size())));
        }
        case Claim::theirs:
          continue;  // the next one, at once
        case Claim::unknown: {
          std::lock_guard lock(s.read_mu);
          if (s.undecided.size() < max_undecided) s.undecided.emplace(seq, std::move(c));
          log::limited_warn("cluster: group {}: a read could not learn in {} ms whether it took message {}; the next "
                            "read here settles it",
                            d, options_.timeout_ms, seq);
          return reply.fail(Errc::cluster_unavailable);
        }
      }
    }
    last_status = "no answer from the stream's leader";
    if (remaining_ms(deadline) == 0) {
      log::limited_warn("cluster: group {}: a read got no answer from JetStream in {} ms (last: {})", d,
                        options_.timeout_ms, last_status);
      return reply.fail(Errc::cluster_unavailable);
    }
    std::this_thread::sleep_for(retry_pause);
  }
}

// One STREAM.MSG.GET of the stream's leader: the first message on subject
// from sequence `from` on (next_by_subj; libnats 3.4 has it only for direct
// gets, which any replica answers).  *data: its bytes (base64 in the
// answer), when not null.
ClusterGroups::Got ClusterGroups::get_next(const std::string& api, const std::string& subject, std::uint64_t from,
                                           Clock::time_point deadline, std::uint64_t& seq, std::vector<std::byte>* data) {
  if (!reads_connected()) return Got::failed;
  std::string body = get_request(subject, from);
  MsgPtr answer;
  if (natsConnection_Request(&answer.m, read_nc_, api.c_str(), body.data(), static_cast<int>(body.size()),
                             attempt_ms(deadline)) != NATS_OK)
    return Got::failed;
  return parse_get(answer.m, seq, data);
}

std::string ClusterGroups::get_request(const std::string& subject, std::uint64_t from) {
  return nlohmann::json{{"seq", from}, {"next_by_subj", subject}}.dump();
}

ClusterGroups::Got ClusterGroups::parse_get(__natsMsg* answer, std::uint64_t& seq, std::vector<std::byte>* data) {
  const char* p = natsMsg_GetData(answer);
  auto j = nlohmann::json::parse(p, p + natsMsg_GetDataLength(answer), nullptr, false);
  if (!j.is_object()) return Got::failed;
  if (auto e = j.find("error"); e != j.end()) {
    bool none = e->is_object() && e->value("err_code", 0) == static_cast<int>(JSNoMessageFoundErr);
    return none ? Got::none : Got::failed;
  }
  auto m = j.find("message");
  if (m == j.end() || !m->is_object() || !m->contains("seq") || !(*m)["seq"].is_number_unsigned()) return Got::failed;
  seq = (*m)["seq"].get<std::uint64_t>();
  if (data == nullptr) return Got::found;
  std::string b64 = m->value("data", std::string());
  data->resize(b64.size() / 4 * 3);
  int n = b64.empty() ? 0
                      : EVP_DecodeBlock(reinterpret_cast<unsigned char*>(data->data()),
                                        reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return Got::failed;
  // EVP_DecodeBlock counts the padding's zero bytes.
  std::size_t pad = b64.size() >= 2 && b64.ends_with("==") ? 2 : b64.ends_with("=") ? 1 : 0;
  data->resize(static_cast<std::size_t>(n) - pad);
  return Got::found;
}

// Whether a message follows seq, asked while seq is being deleted (one
// round trip for both): an own inbox, answered on the read connection.
// Unknown (no answer in time): true.
bool ClusterGroups::delete_and_look_ahead(State& s, std::uint64_t seq, Clock::time_point deadline) {
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  std::string body = get_request(s.subject, seq + 1);
  bool asked = reads_connected() && natsInbox_Create(&inbox) == NATS_OK &&
               natsConnection_SubscribeSync(&sub, read_nc_, inbox) == NATS_OK &&
               natsConnection_PublishRequest(read_nc_, s.get.c_str(), inbox, body.data(), static_cast<int>(body.size())) ==
                   NATS_OK;
  if (!delete_read(s, seq, deadline)) keep_pending(s, seq);
  bool follows = true;
  if (asked) {
    MsgPtr answer;
    std::uint64_t next = 0;
    if (natsSubscription_NextMsg(&answer.m, sub, attempt_ms(deadline)) == NATS_OK)
      follows = parse_get(answer.m, next, nullptr) != Got::none;
  }
  if (sub != nullptr) natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  return follows;
}

// Appends our claim of message seq (retried until JetStream stored it),
// then reads the first claim of the message back: ours or another's.
ClusterGroups::Claim ClusterGroups::claim(State& s, std::uint64_t seq, const std::string& token,
                                          Clock::time_point deadline) {
  std::string subject = s.claim_prefix + std::to_string(seq);
  for (bool stored = false; !stored;) {
    if (stopping_.load()) return Claim::unknown;
    if (connected_.load()) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = attempt_ms(deadline);
      jsErrCode jerr = static_cast<jsErrCode>(0);
      stored = js_Publish(nullptr, js_, subject.c_str(), token.data(), static_cast<int>(token.size()), &po, &jerr) ==
               NATS_OK;
    }
    if (!stored && remaining_ms(deadline) == 0) return Claim::unknown;
    if (!stored) std::this_thread::sleep_for(retry_pause);
  }
  for (;;) {
    std::uint64_t first = 0;
    std::vector<std::byte> owner;
    // "none": a replica that has not applied our claim yet (a new leader).
    if (get_next(s.claims_get, subject, 1, deadline, first, &owner) == Got::found)
      return std::ranges::equal(owner, std::as_bytes(std::span(token))) ? Claim::mine : Claim::theirs;
    if (remaining_ms(deadline) == 0 || stopping_.load()) return Claim::unknown;
    std::this_thread::sleep_for(retry_pause);
  }
}

// Message seq was claimed: it leaves the stream (its room freed).  True
// when it is gone (deleted now or before); false if not deleted by the
// deadline (retried until then).
bool ClusterGroups::delete_read(State& s, std::uint64_t seq, Clock::time_point deadline) {
  for (;;) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = attempt_ms(deadline);
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = NATS_CONNECTION_DISCONNECTED;
    if (fail_deletes_.load()) {
      st = NATS_TIMEOUT;
    } else if (connected_.load()) {
      st = js_DeleteMsg(js_, s.stream.c_str(), seq, &jo, &jerr);
    }
    if (st == NATS_OK || jerr == JSSequenceNotFoundErr || jerr == JSStreamMsgDeleteFailed) return true;
    if (remaining_ms(deadline) == 0 || stopping_.load()) {
      log::limited_warn("cluster: {}: message {} was read but is not deleted yet ({}); retried in the background",
                        s.stream, seq, status_text(st));
      return false;
    }
    std::this_thread::sleep_for(retry_pause);
  }
}

// A won read's message not deleted: the upkeep thread retries it.  Must
// not be dropped: once its claims expire (claim_keep) it would be read
// again.
void ClusterGroups::keep_pending(State& s, std::uint64_t seq) {
  std::lock_guard lock(s.pending_mu);
  if (s.pending_deletes.size() < max_pending_deletes)
    s.pending_deletes.insert(seq);
  else
    log::limited_warn("cluster: {}: {} read messages wait for their delete; message {} is left to the sweep", s.stream,
                      max_pending_deletes, seq);
}

// The upkeep thread, every upkeep_every: for each bound group, the pending
// deletes retried, then the sweep; each request with a deadline of its own
// (--cluster-timeout).
void ClusterGroups::upkeep_loop() {
  std::unique_lock lock(hosts_mu_);
  while (!stopping_.load()) {
    hosts_cv_.wait_for(lock, upkeep_every, [&] { return stopping_.load(); });
    lock.unlock();
    upkeep_once();
    lock.lock();
  }
}

void ClusterGroups::upkeep_once() {
  auto timeout = std::chrono::milliseconds(options_.timeout_ms);
  for (unsigned d = 1; d <= max_groups_ && !stopping_.load(); ++d) {
    State* s = states_[d].load(std::memory_order_acquire);
    if (s == nullptr) continue;
    {
      std::lock_guard lock(s->mu);
      if (!s->bound) continue;
    }
    if (!connected_.load()) continue;
    std::vector<std::uint64_t> pending;
    {
      std::lock_guard lock(s->pending_mu);
      pending.assign(s->pending_deletes.begin(), s->pending_deletes.end());
    }
    for (std::uint64_t seq : pending) {
      if (stopping_.load()) return;
      if (!delete_read(*s, seq, Clock::now() + timeout)) break;  // the cluster is away: the next round
      std::lock_guard lock(s->pending_mu);
      s->pending_deletes.erase(seq);
    }
    sweep(*s, timeout);
  }
}

// The group's oldest message, if it is still the oldest sweep_every after
// this thread first saw it there and has a claim, lost its reader (a
// daemon killed between its claim and its delete, or a delete that failed
// on a host cut off since): deleted (safe whoever holds the claim: the
// first claim owns the message either way).  Every host sweeps every bound
// group, read or not.  A look that fails keeps what was seen.
void ClusterGroups::sweep(State& s, Clock::duration timeout) {
  std::uint64_t oldest = 0;
  Got g = get_next(s.get, s.subject, 1, Clock::now() + timeout, oldest, nullptr);
  if (g == Got::failed) return;
  if (g == Got::none) {
    s.sweep_seq = 0;
    return;
  }
  if (oldest != s.sweep_seq) {
    s.sweep_seq = oldest;
    s.sweep_since = Clock::now();
    return;
  }
  if (Clock::now() - s.sweep_since < sweep_every) return;
  std::uint64_t first = 0;
  std::vector<std::byte> owner;
  if (get_next(s.claims_get, s.claim_prefix + std::to_string(oldest), 1, Clock::now() + timeout, first, &owner) !=
      Got::found)
    return;  // unclaimed (waiting for a reader), or not known now
  if (!delete_read(s, oldest, Clock::now() + timeout)) keep_pending(s, oldest);
}

// Empty: no message from next_seq on (those below were handed to reads
// here and are claimed, or undecided here).
bool ClusterGroups::confirmed_empty(State& s, Clock::time_point deadline) {
  std::lock_guard lock(s.read_mu);
  std::uint64_t seq = 0;
  return s.undecided.empty() && get_next(s.get, s.subject, s.next_seq, deadline, seq, nullptr) == Got::none;
}

// Publish and wait for JetStream's ack, retrying with the same message id
// (JetStream drops duplicates within its 2-minute window) until deadline.
// The id has a fixed length: a message and its held copy are charged alike.
Result<void> ClusterGroups::publish(unsigned d, std::span<const std::byte> bytes, Clock::time_point deadline,
                                    bool held, std::uint64_t* seq) {
  State& s = *state(d);
  if (!bind(s, d)) return fail(Errc::cluster_unavailable);
  std::string id = fmt::format("{:016x}-{:016x}", host_id_, next_msg_id_.fetch_add(1));
  const std::string& subject = held ? s.held_subject : s.subject;
  for (;;) {
    if (stopping_.load()) return fail(Errc::shutting_down);
    if (connected_.load()) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MsgId = id.c_str();
      po.MaxWait = std::max(1L, remaining_ms(deadline));
      jsErrCode jerr = static_cast<jsErrCode>(0);
      jsPubAck* ack = nullptr;
      natsStatus st = js_Publish(&ack, js_, subject.c_str(), bytes.data(), static_cast<int>(bytes.size()), &po, &jerr);
      if (st == NATS_OK && seq != nullptr) *seq = ack->Sequence;
      jsPubAck_Destroy(ack);
      if (st == NATS_OK && held) return {};
      if (st == NATS_OK) {
        // Readable now, on this host at once (other hosts when their copy
        // of the message arrives).
        s.arrivals.fetch_add(1);
        s.maybe_readable.store(true);
        return {};
      }
      if (jerr == JSStreamMessageExceedsMaximumErr) return fail(Errc::message_too_big);
      if (jerr == JSStreamStoreFailedErr) return fail(Errc::storage_full);
    }
    if (remaining_ms(deadline) == 0) return fail(Errc::cluster_unavailable);
    std::this_thread::sleep_for(retry_pause);
  }
}

void ClusterGroups::write(Group& g, Reply reply, std::span<const std::byte> bytes) {
  if (bytes.empty()) return reply.written(0);
  if (bytes.size() > limits_.max_message_size.load()) return reply.fail(Errc::message_too_big);
  auto copy = std::make_shared<std::vector<std::byte>>(bytes.begin(), bytes.end());
  if (g.send_delay() > 0) {
    // A copy goes to the stream's held subject now (charged to the group:
    // EPERM when full, cluster-wide); the message waits here (core Group)
    // until due, then the mover publishes it and deletes the copy.
    return post(std::move(reply), [this, &g, copy](unsigned, Reply& r) { write_delayed(g, r, *copy); });
  }
  post(std::move(reply), [this, &g, copy](unsigned, Reply& r) {
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    auto done = publish(g.descriptor(), *copy, deadline);
    if (done) return r.written(copy->size());
    r.fail(done.error());
  });
}

void ClusterGroups::write_delayed(Group& g, Reply& reply, std::span<const std::byte> bytes) {
  unsigned d = g.descriptor();
  State& s = *state(d);
  std::lock_guard lock(s.held_mu);  // the copies' order is the sends' order
  std::uint64_t seq = 0;
  auto held = publish(d, bytes, Clock::now() + std::chrono::milliseconds(options_.timeout_ms), true, &seq);
  if (!held) return reply.fail(held.error());
  s.held.push_back(seq);
  auto sent = g.send(bytes);
  if (sent) return reply.written(*sent);
  s.held.pop_back();
  delete_held(s, seq);
  reply.fail(sent.error());
}

void ClusterGroups::delete_held(State& s, std::uint64_t seq) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.timeout_ms;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_DeleteMsg(js_, s.stream.c_str(), seq, &jo, &jerr);
  // Gone already: purged by a revoke.
  if (st != NATS_OK && jerr != JSSequenceNotFoundErr && jerr != JSStreamMsgDeleteFailed)
    log::limited_warn("cluster: {}: the held copy {} of a published delayed message is not deleted: {} (JetStream error {})",
                      s.stream, seq, status_text(st), static_cast<int>(jerr));
}

// --- the mover: delayed messages that matured here go to the stream -------

void ClusterGroups::on_readable(Group& g) noexcept {
  State* s = state(g.descriptor());
  {
    std::lock_guard lock(mover_mu_);
    if (s->queued) return;
    s->queued = true;
    mover_queue_.push_back(g.descriptor());
  }
  mover_cv_.notify_all();
}

void ClusterGroups::mover_loop() {
  for (;;) {
    unsigned d = 0;
    State* s = nullptr;
    {
      std::unique_lock lock(mover_mu_);
      mover_cv_.wait(lock, [&] { return stopping_.load() || !mover_queue_.empty(); });
      if (stopping_.load()) return;
      d = mover_queue_.front();
      mover_queue_.pop_front();
      s = states_[d].load(std::memory_order_acquire);
      s->queued = false;
      s->moving = true;
    }
    Group* g = registry_->find(d);
    // One message at a time, in order; a message that cannot be published
    // yet (cluster away, group full) waits here and is retried.
    while (g != nullptr && !stopping_.load()) {
      MessagePtr m = g->receive();
      if (!m) break;
      std::uint64_t held = 0;
      {
        std::lock_guard lock(s->held_mu);
        if (!s->held.empty()) {
          held = s->held.front();
          s->held.pop_front();
        }
      }
      for (;;) {
        auto done = publish(d, m->bytes(), Clock::now() + std::chrono::milliseconds(options_.timeout_ms));
        if (done || stopping_.load()) break;
        if (done.error() == Errc::message_too_big) break;  // the limit shrank meanwhile: cannot ever fit
        // The group is full, its copy included: free the copy's room first
        // (a write in between may take it: then this one waits for room).
        if (done.error() == Errc::storage_full && held != 0) {
          delete_held(*s, std::exchange(held, 0));
          continue;
        }
        log::limited_warn("cluster: group {}: a delayed message is not published yet ({}); retrying", d, describe(done.error()));
        std::unique_lock lock(mover_mu_);
        mover_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_.load(); });
      }
      if (held != 0 && !stopping_.load()) delete_held(*s, held);
    }
    {
      std::lock_guard lock(mover_mu_);
      s->moving = false;
    }
    mover_cv_.notify_all();
  }
}

// Whether the mover published every message that is readable in the local
// core group of d, waiting until deadline.
bool ClusterGroups::drained(unsigned d, Clock::time_point deadline) {
  Group* g = registry_->find(d);
  State* s = state(d);
  std::unique_lock lock(mover_mu_);
  return mover_cv_.wait_until(lock, deadline, [&] {
    return stopping_.load() || (!s->queued && !s->moving && (g == nullptr || !g->readable()));
  });
}

// --- control operations: here, then broadcast to the other hosts ----------

int ClusterGroups::control_here(char op, unsigned d, std::uint64_t arg) {
  if (op == 'L') {  // d: max_message_size, arg: max_storage_size
    if (!check_limits(d, arg)) return 0;
    limits_.max_message_size.store(d);
    limits_.max_storage_size.store(arg);
    log::info("cluster: parameters set by another host: max_message_size={} max_storage_size={}", d, arg);
    return 0;
  }
  Group* g = registry_->find(d);
  if (g == nullptr) return 0;
  switch (op) {
    case 'A': return static_cast<int>(g->awake());
    case 'R': revoke_here(*g); return 0;
    case 'F':
      g->flush_delayed();
      return drained(d, Clock::now() + std::chrono::milliseconds(options_.timeout_ms)) ? 0 : -EIO;
    case 'P': return static_cast<int>(std::min<std::size_t>(g->delayed(), INT32_MAX));
    case 'D': {
      auto r = g->set_send_delay(static_cast<unsigned>(arg));
      if (!r) log::warn("cluster: group {}: send delay {} ms from another host not applied here: {}", d, arg, describe(r.error()));
      return r ? 0 : -EPERM;
    }
  }
  return 0;
}

unsigned ClusterGroups::live_hosts() {
  std::lock_guard lock(hosts_mu_);
  auto now = Clock::now();
  unsigned n = 0;
  for (auto& [id, seen] : hosts_) n += now - seen < host_alive;
  return n;
}

long ClusterGroups::broadcast(char op, unsigned d, std::uint64_t arg, bool gather, unsigned* answered) {
  *answered = 0;
  if (!connected_.load()) return 0;
  std::string body = fmt::format("{} {} {} {:016x}", op, d, arg, host_id_);
  std::string subject = options_.prefix + ".ctl";
  if (!gather) {
    natsConnection_Publish(nc_, subject.c_str(), body.data(), static_cast<int>(body.size()));
    natsConnection_FlushTimeout(nc_, options_.timeout_ms);
    return 0;
  }
  unsigned expected = live_hosts();
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  long sum = 0;
  if (natsInbox_Create(&inbox) == NATS_OK && natsConnection_SubscribeSync(&sub, nc_, inbox) == NATS_OK &&
      natsConnection_PublishRequest(nc_, subject.c_str(), inbox, body.data(), static_cast<int>(body.size())) == NATS_OK) {
    // A host answers FLUSH once its flushed messages are stored, or after
    // its own timeout_ms: wait for that.
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.gather_ms) +
                    (op == 'F' ? std::chrono::milliseconds(options_.timeout_ms) : std::chrono::milliseconds(0));
    while (*answered < expected) {
      long left = remaining_ms(deadline);
      if (left == 0) break;
      MsgPtr m;
      if (natsSubscription_NextMsg(&m.m, sub, left) != NATS_OK) break;
      long v = 0;
      const char* p = natsMsg_GetData(m.m);
      std::from_chars(p, p + natsMsg_GetDataLength(m.m), v);
      sum += v;
      ++*answered;
    }
    if (*answered < expected)
      log::limited_warn("cluster: group {}: {} of {} other hosts answered {} within {} ms", d, *answered, expected,
                        op == 'A' ? "AWAKE" : op == 'F' ? "FLUSH" : op == 'R' ? "REVOKE" : "SET_SEND_DELAY",
                        options_.gather_ms);
  }
  if (sub != nullptr) natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  return sum;
}

void ClusterGroups::on_control(natsMsg* m) noexcept {
  if (stopping_.load() || registry_ == nullptr) return;
  std::string_view body(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  char op = 0;
  unsigned d = 0;
  unsigned long arg = 0, from = 0;
  if (std::sscanf(std::string(body).c_str(), "%c %u %lu %lx", &op, &d, &arg, &from) != 4) return;
  if (from == host_id_ || (op != 'L' && !registry_->accepts(d))) return;
  const char* reply_to = natsMsg_GetReply(m);
  std::string reply = reply_to != nullptr ? reply_to : "";
  // Flush waits for the mover: run it off the delivery thread.
  auto work = [this, op, d, arg, reply] {
    int v = control_here(op, d, arg);
    if (!reply.empty()) {
      std::string text = std::to_string(std::max(v, 0));
      natsConnection_Publish(nc_, reply.c_str(), text.data(), static_cast<int>(text.size()));
    }
  };
  if (op == 'F')
    pool_->post({.run = [work](unsigned) mutable { work(); }, .cancel = {}});
  else
    work();
}

void ClusterGroups::set_params(Reply reply, std::size_t max_message_size, std::size_t max_storage_size) {
  limits_.max_message_size.store(max_message_size);
  limits_.max_storage_size.store(max_storage_size);
  log::info("parameters set: max_message_size={} max_storage_size={}", max_message_size, max_storage_size);
  post(std::move(reply), [this, max_message_size, max_storage_size](unsigned, Reply& r) {
    unsigned answered = 0;
    broadcast('L', static_cast<unsigned>(max_message_size), max_storage_size, true, &answered);
    if (!resize_streams(max_storage_size)) return r.fail(Errc::cluster_unavailable);
    r.ioctl(0);
  });
}

// Grows every group's stream that exists (installed on any host), not only
// those bound here.  Never shrinks one: JetStream drops the oldest messages
// of a stream that holds more than its new max_bytes, and a write can
// always race the resize; a smaller limit is for streams created later.
bool ClusterGroups::resize_streams(std::size_t max_storage_size) {
  if (!connected_.load()) return false;
  bool ok = true;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.timeout_ms;
  for (unsigned d = 1; d <= max_groups_ && !stopping_.load(); ++d) {
    std::string name = fmt::format("{}_g{}", options_.prefix, d);
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsStreamInfo* si = nullptr;
    natsStatus st = js_GetStreamInfo(&si, js_, name.c_str(), &jo, &jerr);
    if (st != NATS_OK) {
      if (jerr != JSStreamNotFoundErr) {
        log::limited_warn("cluster: stream {} not resized: {}", name, status_text(st));
        ok = false;
      }
      continue;
    }
    if (si->Config->MaxBytes < static_cast<int64_t>(max_storage_size)) {
      si->Config->MaxBytes = static_cast<int64_t>(max_storage_size);
      st = js_UpdateStream(nullptr, js_, si->Config, &jo, &jerr);
      if (st != NATS_OK) {
        log::limited_warn("cluster: stream {} not resized: {} (JetStream error {})", name, status_text(st),
                          static_cast<int>(jerr));
        ok = false;
      }
    }
    jsStreamInfo_Destroy(si);
  }
  return ok;
}

void ClusterGroups::awake(Group& g, Reply reply) {
  unsigned here = g.awake();
  post(std::move(reply), [this, d = g.descriptor(), here](unsigned, Reply& r) {
    unsigned answered = 0;
    long there = broadcast('A', d, 0, true, &answered);
    r.ioctl(static_cast<int>(std::min<long>(here + there, INT32_MAX)));
  });
}

// The revoked messages' copies are forgotten by their hosts, then deleted
// at once by this one: every copy on the held subject when the purge runs
// (also those of hosts that died with delayed messages; a delayed message
// that matured and is not moved yet loses its copy early, and so does a
// delayed write racing the revoke: that message is then not charged until
// it is published).
void ClusterGroups::revoke_here(Group& g) {
  State& s = *state(g.descriptor());
  std::lock_guard lock(s.held_mu);
  std::size_t k = g.revoke_delayed();
  for (; k > 0 && !s.held.empty(); --k) s.held.pop_back();
}

void ClusterGroups::revoke(Group& g, Reply reply) {
  revoke_here(g);
  post(std::move(reply), [this, d = g.descriptor()](unsigned, Reply& r) {
    unsigned answered = 0;
    broadcast('R', d, 0, true, &answered);
    State& s = *state(d);
    if (!bind(s, d)) return r.fail(Errc::cluster_unavailable);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = options_.timeout_ms;
    jo.Stream.Purge.Subject = s.held_subject.c_str();
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_PurgeStream(js_, s.stream.c_str(), &jo, &jerr);
    if (st != NATS_OK) {
      log::limited_warn("cluster: group {}: the copies of revoked delayed messages are not deleted: {}", d, status_text(st));
      return r.fail(Errc::cluster_unavailable);
    }
    r.ioctl(0);
  });
}

void ClusterGroups::flush(Group& g, Reply reply, bool as_ioctl) {
  g.flush_delayed();
  post(std::move(reply), [this, d = g.descriptor(), as_ioctl](unsigned, Reply& r) {
    bool ok = drained(d, Clock::now() + std::chrono::milliseconds(options_.timeout_ms));
    unsigned answered = 0;
    broadcast('F', d, 0, true, &answered);
    if (!ok) return r.fail(Errc::cluster_unavailable);
    if (as_ioctl) return r.ioctl(0);
    r.ok();
  });
}

// EPERM when delayed messages are pending on this host or on another that
// answers within gather_ms (asked first); then set here, kept in the
// cluster's bucket and told to the others.
void ClusterGroups::set_send_delay(Group& g, Reply reply, unsigned ms) {
  if (g.delayed() > 0) return reply.fail(Errc::delay_pending);
  post(std::move(reply), [this, &g, d = g.descriptor(), ms](unsigned, Reply& r) {
    unsigned asked = 0;
    if (broadcast('P', d, 0, true, &asked) > 0) return r.fail(Errc::delay_pending);
    auto set = g.set_send_delay(ms);
    if (!set) return r.fail(set.error());
    // Kept for the hosts that install the group later, then told to the
    // others now.
    kvStore* kv = delays();
    natsStatus st = kv != nullptr ? kvStore_PutString(nullptr, kv, fmt::format("g{}", d).c_str(),
                                                      std::to_string(ms).c_str())
                                  : NATS_CONNECTION_DISCONNECTED;
    unsigned answered = 0;
    broadcast('D', d, ms, true, &answered);
    if (st != NATS_OK) {
      log::limited_warn("cluster: group {}: send delay not stored in the cluster: {}", d, status_text(st));
      return r.fail(Errc::cluster_unavailable);
    }
    r.ioctl(0);
  });
}

// --- messages and hosts ----------------------------------------------------

void ClusterGroups::on_message(natsMsg* m) noexcept {
  if (stopping_.load() || registry_ == nullptr) return;
  const char* subject = natsMsg_GetSubject(m);
  const char* dot = std::strrchr(subject, '.');
  unsigned d = 0;
  if (dot == nullptr || std::from_chars(dot + 1, subject + std::strlen(subject), d).ec != std::errc() ||
      !registry_->accepts(d))
    return;
  State* s = state(d);
  s->arrivals.fetch_add(1);
  s->maybe_readable.store(true);
  if (Group* g = registry_->find(d)) pollers_.on_readable(*g);
}

void ClusterGroups::on_host(natsMsg* m) noexcept {
  std::uint64_t id = 0;
  const char* p = natsMsg_GetData(m);
  if (std::from_chars(p, p + natsMsg_GetDataLength(m), id, 16).ec != std::errc() || id == host_id_) return;
  std::lock_guard lock(hosts_mu_);
  if (hosts_.size() < 4096 || hosts_.contains(id)) hosts_[id] = Clock::now();
}

void ClusterGroups::heartbeat_loop() {
  std::string subject = options_.prefix + ".hosts";
  std::string body = fmt::format("{:016x}", host_id_);
  std::unique_lock lock(hosts_mu_);
  while (!stopping_.load()) {
    lock.unlock();
    if (connected_.load()) natsConnection_Publish(nc_, subject.c_str(), body.data(), static_cast<int>(body.size()));
    lock.lock();
    auto now = Clock::now();
    std::erase_if(hosts_, [&](auto& h) { return now - h.second > 10 * host_alive; });
    hosts_cv_.wait_for(lock, heartbeat_every, [&] { return stopping_.load(); });
  }
}

}  // namespace synchmess
