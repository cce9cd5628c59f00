// cluster_groups.h - groups shared by every synchmessd of a NATS JetStream
// cluster (synchmessd --cluster=nats://...); docs/abi.md "Cluster groups".
//
// Contract (the GroupBackend of group_backend.h; errors in docs/abi.md):
//  - Group d is the stream PREFIX_g<d> (subjects PREFIX.msg.<d> and, for
//    the copies of delayed messages, PREFIX.dly.<d>; work-queue
//    retention, file storage, max_bytes = max_storage_size with
//    discard-new, max_msg_size, `replicas` copies); its readers' claims go
//    to the stream PREFIX_c<d> (subjects PREFIX.claim.<d>.<seq>, kept
//    5 minutes or 30 timeouts): whichever host installs or opens d first
//    creates them, the others bind to them.
//  - write: publish, and answer only after JetStream's ack (the message is
//    stored on a majority of the replicas); retried with the same message id
//    (deduplicated) until the deadline.  With a send delay a copy is
//    published to PREFIX.dly.<d> first (charged to the stream: EPERM when
//    full), the message waits on this host (core Group) and is published
//    when due, by one mover thread, in order; then its copy is deleted.
//  - open: binds the group (first open on this host), learns its send delay
//    (KV bucket PREFIX_delays) and whether it is empty, then answers; every
//    open does the last two again.
//  - read: take the oldest message no read claimed: append a claim of it
//    (a token of this read), read the message's first claim back, answer
//    with its bytes if that claim is ours; 0 when no message is left
//    anywhere; EINTR, nothing taken, if the caller was interrupted before
//    the read began.  The winner deletes the message before answering; a
//    delete that fails is retried by the upkeep thread (every second, own
//    deadline) until it succeeds, and every second every bound group's
//    oldest message, claimed and still there 2 s later, is deleted (its
//    reader died).  No
//    JetStream consumer (nats-server 2.9's lose their state when their
//    leader dies).  The argument is at read_job in the .cpp.
//  - AWAKE, SET_SEND_DELAY, REVOKE, FLUSH, SET_PARAMS: done here and
//    broadcast on core NATS (PREFIX.ctl) to the other hosts, gathering
//    their answers until every host seen alive (PREFIX.hosts heartbeats)
//    answered or `gather_ms` passed (FLUSH: plus timeout_ms); AWAKE returns
//    the sum.  SET_SEND_DELAY asks first whether delayed messages are
//    pending anywhere (EPERM) and keeps the delay in the bucket; REVOKE
//    purges the copies; SET_PARAMS grows existing streams (never shrinks).
//  - poll: every host subscribes to PREFIX.msg.*, so a message published
//    anywhere wakes its pollers.
//  - The cluster lost: requests fail with Errc::cluster_unavailable (EIO)
//    after at most `timeout_ms`; the client library reconnects by itself;
//    each change (connected, disconnected, reconnected) is logged once.
// Thread safety: every member may be called from any thread.  NATS calls
// run on the WorkPool's threads, the mover or the upkeep thread, never on
// the caller's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/cluster_options.h"
#include "cluster/work_pool.h"
#include "core/errc.h"
#include "core/group.h"
#include "core/registry.h"
#include "core/size_limits.h"
#include "requests/group_backend.h"

struct __natsConnection;
struct __jsCtx;
struct __natsSubscription;
struct __natsMsg;
struct __kvStore;

namespace synchmess {


class ClusterGroups final : public GroupBackend, public GroupListener {
 public:
  // `pollers` is told when a group gets a message (GroupRequests).
  // `limits` are this host's; IOCTL_SET_PARAMS on any host changes them.
  ClusterGroups(ClusterOptions options, Limits& limits, GroupListener& pollers);
  ~ClusterGroups();
  ClusterGroups(const ClusterGroups&) = delete;
  ClusterGroups& operator=(const ClusterGroups&) = delete;

  // Connects (in the background when no server answers yet) and subscribes.
  // Fails only on a bad configuration (error set).  `registry` outlives us.
  Result<void> start(Registry& registry, std::string& error);
  // Answers every queued request (ESHUTDOWN), joins the threads, closes.
  void stop();

  bool connected() const noexcept { return connected_.load(); }
  // Tests only: while on, every delete of a read message fails as if the
  // stream's leader did not answer (the background retry is tested).
  void fail_deletes_for_testing(bool on) noexcept { fail_deletes_.store(on); }

  void open(Group& g, Reply reply, const fuse_file_info& fi) override;
  void read(Group& g, Reply reply, std::size_t size) override;
  void write(Group& g, Reply reply, std::span<const std::byte> bytes) override;
  void flush(Group& g, Reply reply, bool as_ioctl) override;
  void set_send_delay(Group& g, Reply reply, unsigned ms) override;
  void revoke(Group& g, Reply reply) override;
  void awake(Group& g, Reply reply) override;
  bool readable(Group& g) noexcept override;
  // Sets them here, broadcasts them (the other hosts set them too) and
  // grows every group's stream that is smaller (max_bytes; never shrinks
  // one: docs/abi.md); EIO if a stream could not be grown.
  void set_params(Reply reply, std::size_t max_message_size, std::size_t max_storage_size) override;

  // GroupListener of the registry: a delayed message became readable in
  // the local core group; the mover publishes it.
  void on_readable(Group& g) noexcept override;

  // Connection events (the client library's threads).
  void connection_changed(bool up, const char* what) noexcept;
  void on_message(__natsMsg* m) noexcept;  // PREFIX.msg.* : wakes pollers
  void on_control(__natsMsg* m) noexcept;  // PREFIX.ctl
  void on_host(__natsMsg* m) noexcept;     // PREFIX.hosts

 private:
  struct State;
  using Clock = std::chrono::steady_clock;

  State* state(unsigned d);
  bool reads_connected() const noexcept;
  Result<void> bind(State& s, unsigned d);
  // The KV bucket PREFIX_delays (key g<d>: the send delay in ms), created
  // or bound on first use; nullptr while the cluster is away.
  __kvStore* delays();
  // At bind: the delay kept in the bucket, applied to the local group.
  void learn_delay(unsigned d);
  enum class Got { found, none, failed };
  enum class Claim { mine, theirs, unknown };
  Clock::duration claim_keep() const;
  Got get_next(const std::string& api, const std::string& subject, std::uint64_t from, Clock::time_point deadline,
               std::uint64_t& seq, std::vector<std::byte>* data);
  static std::string get_request(const std::string& subject, std::uint64_t from);
  static Got parse_get(__natsMsg* answer, std::uint64_t& seq, std::vector<std::byte>* data);
  bool delete_and_look_ahead(State& s, std::uint64_t seq, Clock::time_point deadline);
  Claim claim(State& s, std::uint64_t seq, const std::string& token, Clock::time_point deadline);
  bool delete_read(State& s, std::uint64_t seq, Clock::time_point deadline);
  void keep_pending(State& s, std::uint64_t seq);
  void sweep(State& s, Clock::duration timeout);
  void upkeep_loop();
  void upkeep_once();
  void post(Reply reply, std::move_only_function<void(unsigned, Reply&)> job);
  // held: to the held subject (a delayed message's copy); *seq: its stream
  // sequence.
  Result<void> publish(unsigned d, std::span<const std::byte> bytes, Clock::time_point deadline, bool held = false,
                       std::uint64_t* seq = nullptr);
  void write_delayed(Group& g, Reply& reply, std::span<const std::byte> bytes);
  void delete_held(State& s, std::uint64_t seq);
  void revoke_here(Group& g);
  void read_job(Group& g, Reply& reply, std::size_t size, unsigned thread);
  bool confirmed_empty(State& s, Clock::time_point deadline);
  // Local part of a control operation; returns the count (AWAKE) or errno.
  int control_here(char op, unsigned d, std::uint64_t arg);
  bool resize_streams(std::size_t max_storage_size);
  // Broadcast op to the other hosts; sums their integer answers when
  // `gather`.  Returns the number of answers in *answered.
  long broadcast(char op, unsigned d, std::uint64_t arg, bool gather, unsigned* answered);
  unsigned live_hosts();
  // Mover: publishes matured delayed messages of the local core groups.
  void mover_loop();
  bool drained(unsigned d, Clock::time_point deadline);
  void heartbeat_loop();

  const ClusterOptions options_;
  Limits& limits_;
  GroupListener& pollers_;
  Registry* registry_ = nullptr;
  const std::uint64_t host_id_;
  std::atomic<std::uint64_t> next_msg_id_{1};

  __natsConnection* nc_ = nullptr;       // writes, JetStream API, broadcasts
  __natsConnection* read_nc_ = nullptr;  // reads: the gets of messages and claims
  __jsCtx* js_ = nullptr;
  __natsSubscription* msg_sub_ = nullptr;
  __natsSubscription* ctl_sub_ = nullptr;
  __natsSubscription* host_sub_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};

  std::mutex states_mu_;  // creation of states_ entries
  std::unique_ptr<std::atomic<State*>[]> states_;
  unsigned max_groups_ = 0;

  std::unique_ptr<WorkPool> pool_;

  std::mutex kv_mu_;
  __kvStore* kv_ = nullptr;  // kv_mu_

  std::mutex mover_mu_;
  std::condition_variable mover_cv_;
  std::deque<unsigned> mover_queue_;  // groups with matured messages
  std::thread mover_;

  std::mutex hosts_mu_;
  std::condition_variable hosts_cv_;
  std::map<std::uint64_t, Clock::time_point> hosts_;  // other hosts, last heartbeat
  std::thread heartbeat_;
  std::thread upkeep_;  // pending deletes, sweeps (upkeep_loop)
  std::atomic<bool> fail_deletes_{false};  // fail_deletes_for_testing
};

}  // namespace synchmess
