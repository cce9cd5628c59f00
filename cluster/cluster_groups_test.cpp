// Two ClusterGroups ("hosts", each with its own registry) against one real
// nats-server with JetStream on 127.0.0.1 (replicas 1).  Skipped when
// nats-server is not installed.  The three-server cluster, the FUSE
// transport and failures are tested by tests/cluster/run.
#include "cluster/cluster_groups.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <nats/nats.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "requests/test_replies.h"

namespace synchmess {
namespace {

using testing::RecordingReplies;
using Kind = RecordingReplies::Kind;

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// One nats-server with JetStream, on a free loopback port, store in a
// temporary directory; killed and removed by the destructor.
class NatsServer {
 public:
  NatsServer() {
    if (std::system("command -v nats-server >/dev/null 2>&1") != 0) return;
    char tmpl[] = "/tmp/synchmess-cluster-test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    port_ = free_port();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_), store = dir_ + "/js";
      std::freopen((dir_ + "/log").c_str(), "w", stderr);
      ::execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), "-js", "-sd", store.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~NatsServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  bool available() const { return pid_ > 0; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Records on_readable calls (GroupRequests' role).
struct CountingListener final : GroupListener {
  std::atomic<int> calls{0};
  void on_readable(Group&) noexcept override { ++calls; }
};

// A host: io_context with a thread (delays), registry, cluster backend.
struct Host {
  explicit Host(const std::string& url) : cluster(options(url), limits, pollers) {
    thread = std::thread([this] { io.run(); });
  }
  ~Host() {
    cluster.stop();
    registry.shutdown();
    guard.reset();
    io.stop();
    thread.join();
  }
  static ClusterOptions options(const std::string& url) {
    ClusterOptions o;
    o.servers = url;
    o.replicas = 1;
    o.prefix = "smtest";
    o.gather_ms = 3000;
    o.timeout_ms = 3000;
    return o;
  }
  bool start() {
    std::string error;
    if (!cluster.start(registry, error)) return false;
    for (int i = 0; i < 500 && !cluster.connected(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return cluster.connected();
  }
  Group& group(unsigned d) { return *registry.install(d)->group; }

  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard = boost::asio::make_work_guard(io);
  Limits limits;
  CountingListener pollers;
  ClusterGroups cluster;
  Registry registry{io.get_executor(), limits, {.max_groups = 8, .listener = &cluster}};
  std::thread thread;
};

class ClusterGroupsTest : public ::testing::Test {
 protected:
  // A JetStream connection of the test's own, to look at the streams.
  struct Inspector {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    ~Inspector() {
      if (js != nullptr) jsCtx_Destroy(js);
      if (nc != nullptr) natsConnection_Destroy(nc);
    }
    // The messages `stream` holds (~0 when the server does not say).
    std::uint64_t messages(const char* stream) const {
      jsStreamInfo* si = nullptr;
      std::uint64_t n = ~0ull;
      if (js_GetStreamInfo(&si, js, stream, nullptr, nullptr) == NATS_OK) {
        n = si->State.Msgs;
        jsStreamInfo_Destroy(si);
      }
      return n;
    }
  };
  void connect(Inspector& in) {
    ASSERT_EQ(natsConnection_ConnectTo(&in.nc, server_.url().c_str()), NATS_OK);
    ASSERT_EQ(natsConnection_JetStream(&in.js, in.nc, nullptr), NATS_OK);
  }
  void SetUp() override {
    if (!server_.available()) GTEST_SKIP() << "nats-server is not installed";
    a_ = std::make_unique<Host>(server_.url());
    b_ = std::make_unique<Host>(server_.url());
    ASSERT_TRUE(a_->start() && b_->start()) << "no connection to " << server_.url();
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
  }
  // Runs one request and waits for its answer.
  template <class F>
  RecordingReplies::Answer call(F f) {
    std::uintptr_t id = ++next_;
    f(replies_.make(id));
    EXPECT_TRUE(replies_.wait_answered(id));
    auto a = replies_.answer_to(id);
    return a ? *a : RecordingReplies::Answer{};
  }
  RecordingReplies::Answer write(Host& h, unsigned d, std::string_view text) {
    return call([&](Reply r) { h.cluster.write(h.group(d), std::move(r), std::as_bytes(std::span(text))); });
  }
  std::string read(Host& h, unsigned d) {
    auto a = call([&](Reply r) { h.cluster.read(h.group(d), std::move(r), 4096); });
    EXPECT_EQ(a.kind, Kind::data) << "errno " << a.value;
    return {reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size()};
  }
  // Waits until a host has seen the other's heartbeat (AWAKE counts it).
  void wait_hosts_know_each_other() {
    auto known = [&](Host& h, unsigned d) {
      auto a = call([&](Reply r) { h.cluster.awake(h.group(d), std::move(r)); });
      return a.kind == Kind::ioctl;
    };
    // Heartbeats go every second; AWAKE with nobody asleep answers 0 either
    // way, so wait for the heartbeat through a sleeper on the other host.
    // Both ways: each host waits only for the hosts it has seen.
    for (auto [from, to] : {std::pair{a_.get(), b_.get()}, std::pair{b_.get(), a_.get()}}) {
      Group& gto = to->group(8);
      bool answered = false;
      for (int i = 0; i < 100 && !answered; ++i) {
        gto.sleep([](Result<void>) {});
        auto a = call([&](Reply r) { from->cluster.awake(from->group(8), std::move(r)); });
        answered = a.value == 1;
        if (!answered) {
          gto.awake();
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      if (!answered) FAIL() << "a host never answered the other's AWAKE";
    }
    (void)known;
  }

  NatsServer server_;
  RecordingReplies replies_;
  std::uintptr_t next_ = 0;
  std::unique_ptr<Host> a_, b_;
};

TEST_F(ClusterGroupsTest, WrittenOnOneHostReadOnceOnTheOther) {
  EXPECT_EQ(write(*a_, 1, "first").value, 5);
  EXPECT_EQ(write(*a_, 1, "second").value, 6);
  EXPECT_EQ(read(*b_, 1), "first");
  EXPECT_EQ(read(*a_, 1), "second");
  EXPECT_EQ(read(*b_, 1), "");  // empty everywhere
  EXPECT_EQ(read(*a_, 1), "");
  EXPECT_EQ(replies_.violations(), 0);
}

TEST_F(ClusterGroupsTest, ShortReadConsumesTheWholeMessage) {
  write(*a_, 2, "abcdef");
  auto a = call([&](Reply r) { b_->cluster.read(b_->group(2), std::move(r), 2); });
  EXPECT_EQ(a.kind, Kind::data);
  EXPECT_EQ(a.value, 2);
  EXPECT_EQ(read(*a_, 2), "");
}

TEST_F(ClusterGroupsTest, LimitsGiveEperm) {
  std::string big(a_->limits.max_message_size + 1, 'x');
  auto a = write(*a_, 3, big);
  EXPECT_EQ(a.kind, Kind::error);
  EXPECT_EQ(a.value, EPERM);
  // The stream's max_bytes (1 MiB) fills with 1024-byte messages.
  std::string msg(1024, 'y');
  int stored = 0;
  RecordingReplies::Answer last;
  for (int i = 0; i < 2000; ++i) {
    last = write(i % 2 ? *a_ : *b_, 3, msg);
    if (last.kind != Kind::written) break;
    ++stored;
  }
  EXPECT_EQ(last.kind, Kind::error);
  EXPECT_EQ(last.value, EPERM);
  EXPECT_GT(stored, 800);
  EXPECT_LT(stored, 1025);
  EXPECT_EQ(read(*b_, 3).size(), 1024u);  // a read frees room
  EXPECT_EQ(write(*a_, 3, msg).kind, Kind::written);
}

TEST_F(ClusterGroupsTest, AwakeWakesAndCountsSleepersOfEveryHost) {
  wait_hosts_know_each_other();
  Group& ga = a_->group(4);
  Group& gb = b_->group(4);
  std::atomic<int> woken{0};
  for (int i = 0; i < 2; ++i) ga.sleep([&](Result<void> r) { woken += r.has_value(); });
  for (int i = 0; i < 3; ++i) gb.sleep([&](Result<void> r) { woken += r.has_value(); });
  auto a = call([&](Reply r) { a_->cluster.awake(ga, std::move(r)); });
  EXPECT_EQ(a.kind, Kind::ioctl);
  EXPECT_EQ(a.value, 5);
  EXPECT_EQ(woken.load(), 5);
  a = call([&](Reply r) { b_->cluster.awake(gb, std::move(r)); });
  EXPECT_EQ(a.value, 0);
}

TEST_F(ClusterGroupsTest, AMessageFromAnotherHostWakesPollers) {
  b_->group(5);
  EXPECT_EQ(read(*b_, 5), "");
  EXPECT_FALSE(b_->cluster.readable(b_->group(5)));
  int before = b_->pollers.calls.load();
  write(*a_, 5, "wake");
  for (int i = 0; i < 500 && b_->pollers.calls.load() == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(b_->pollers.calls.load(), before);
  EXPECT_TRUE(b_->cluster.readable(b_->group(5)));
  EXPECT_EQ(read(*b_, 5), "wake");
}

TEST_F(ClusterGroupsTest, DelayFlushAndRevokeActOnEveryHost) {
  wait_hosts_know_each_other();
  b_->group(6);  // a host applies another's delay to the groups it has installed
  unsigned ms = 600000;
  auto set = call([&](Reply r) { a_->cluster.set_send_delay(a_->group(6), std::move(r), ms); });
  EXPECT_EQ(set.value, 0);
  for (int i = 0; i < 500 && b_->group(6).send_delay() != ms; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(b_->group(6).send_delay(), ms);  // the delay reached host b
  write(*b_, 6, "held-b1");
  write(*b_, 6, "held-b2");
  EXPECT_EQ(read(*a_, 6), "");  // held on b
  auto f = call([&](Reply r) { a_->cluster.flush(a_->group(6), std::move(r), true); });
  EXPECT_EQ(f.kind, Kind::ioctl);
  EXPECT_EQ(read(*a_, 6), "held-b1");  // flushed on b before a's flush returned
  EXPECT_EQ(read(*a_, 6), "held-b2");
  write(*b_, 6, "revoked");
  call([&](Reply r) { a_->cluster.revoke(a_->group(6), std::move(r)); });
  for (int i = 0; i < 500 && b_->group(6).delayed() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(b_->group(6).delayed(), 0u);
  call([&](Reply r) { a_->cluster.flush(a_->group(6), std::move(r), true); });
  EXPECT_EQ(read(*a_, 6), "");
}

// The delay is kept in the cluster (KV bucket): a host that installs the
// group after it was set learns it when the group's first file opens, and
// that open also learns that the group is empty (poll says so at once).
TEST_F(ClusterGroupsTest, AHostThatInstallsAGroupLaterLearnsItsSendDelay) {
  unsigned ms = 450000;
  auto set = call([&](Reply r) { a_->cluster.set_send_delay(a_->group(7), std::move(r), ms); });
  EXPECT_EQ(set.kind, Kind::ioctl);
  EXPECT_EQ(b_->registry.find(7), nullptr);  // not installed on b when it was set
  Group& gb = b_->group(7);
  EXPECT_EQ(gb.send_delay(), 0u);
  fuse_file_info fi{};
  auto opened = call([&](Reply r) { b_->cluster.open(gb, std::move(r), fi); });
  EXPECT_EQ(opened.kind, Kind::open);
  EXPECT_EQ(gb.send_delay(), ms);
  EXPECT_FALSE(b_->cluster.readable(gb));
  // Back to 0 for everyone, including a third host later.
  call([&](Reply r) { b_->cluster.set_send_delay(gb, std::move(r), 0); });
  for (int i = 0; i < 500 && a_->group(7).send_delay() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(a_->group(7).send_delay(), 0u);
}

// Delayed messages are charged to the group's stream when written (their
// copies on the held subject), on every host: the limit is the same with
// or without a delay, a pending delayed message on one host refuses
// another host's write, and the copies are gone once the messages are
// published (flush) or revoked.
TEST_F(ClusterGroupsTest, DelayedMessagesAreChargedClusterWideWhenWritten) {
  for (Host* h : {a_.get(), b_.get()}) h->limits.max_storage_size.store(64 * 1024);
  const unsigned d = 2;
  std::string msg(1000, 'm');
  auto fill = [&] {
    int n = 0;
    for (; n < 200; ++n) {
      auto w = write(n % 2 ? *b_ : *a_, d, msg);
      if (w.kind != Kind::written) {
        EXPECT_EQ(w.value, EPERM);
        break;
      }
    }
    return n;
  };
  auto drain = [&] {
    int n = 0;
    while (read(n % 2 ? *a_ : *b_, d).size() == msg.size()) ++n;
    return n;
  };
  auto set_delay = [&](Host& h, unsigned ms) {
    return call([&](Reply r) { h.cluster.set_send_delay(h.group(d), std::move(r), ms); });
  };
  wait_hosts_know_each_other();
  int immediate = fill();
  EXPECT_GT(immediate, 50);
  EXPECT_LT(immediate, 66);
  EXPECT_EQ(drain(), immediate);

  EXPECT_EQ(set_delay(*a_, 600000).kind, Kind::ioctl);
  EXPECT_EQ(fill(), immediate);  // a copy is charged what its message is
  EXPECT_EQ(read(*a_, d), "");   // all pending
  EXPECT_EQ(set_delay(*a_, 0).value, EPERM);  // pending on both hosts
  auto f = call([&](Reply r) { b_->cluster.flush(b_->group(d), std::move(r), true); });
  EXPECT_EQ(f.kind, Kind::ioctl);
  EXPECT_EQ(drain(), immediate);
  // The copies were deleted when their messages were published.
  EXPECT_EQ(set_delay(*a_, 0).kind, Kind::ioctl);
  EXPECT_EQ(fill(), immediate);
  EXPECT_EQ(drain(), immediate);

  // Revoked on one host, the copies of both hosts' messages are deleted.
  EXPECT_EQ(set_delay(*b_, 600000).kind, Kind::ioctl);  // nothing pending now
  EXPECT_EQ(fill(), immediate);
  auto rv = call([&](Reply r) { b_->cluster.revoke(b_->group(d), std::move(r)); });
  EXPECT_EQ(rv.kind, Kind::ioctl);
  EXPECT_EQ(a_->group(d).delayed(), 0u);
  EXPECT_EQ(set_delay(*a_, 0).kind, Kind::ioctl);
  EXPECT_EQ(fill(), immediate);
  EXPECT_EQ(drain(), immediate);
  EXPECT_EQ(read(*b_, d), "");
}

// IOCTL_SET_PARAMS on one host: every host's limits; a larger storage
// limit grows the streams of groups created before (also of a group the
// host never installed), a smaller one is for streams created afterwards
// (never drops a message).
TEST_F(ClusterGroupsTest, SetParamsReachesEveryHostAndGrowsExistingStreams) {
  wait_hosts_know_each_other();
  const unsigned old_group = 5, new_group = 6;
  std::string msg(1000, 'p');
  for (int i = 0; i < 10; ++i) ASSERT_EQ(write(*a_, old_group, msg).kind, Kind::written);
  auto set = call([&](Reply r) { b_->cluster.set_params(std::move(r), 2000, 4096); });
  EXPECT_EQ(set.kind, Kind::ioctl);
  EXPECT_EQ(a_->limits.max_message_size.load(), 2000u);
  EXPECT_EQ(a_->limits.max_storage_size.load(), 4096u);
  EXPECT_EQ(write(*a_, old_group, "x").kind, Kind::written);  // not shrunk: nothing dropped
  for (int i = 0; i < 10; ++i) EXPECT_EQ(read(i % 2 ? *a_ : *b_, old_group).size(), msg.size());
  EXPECT_EQ(read(*a_, old_group), "x");
  std::string big(1500, 'b');
  auto fill = [&](unsigned d) {  // on b only
    int n = 0;
    while (n < 100 && write(*b_, d, big).kind == Kind::written) ++n;
    return n;
  };
  EXPECT_EQ(fill(new_group), 2);  // created with 4096 bytes: two of 1500 (JetStream's count)
  set = call([&](Reply r) { a_->cluster.set_params(std::move(r), 1024 * 2, 1 << 20); });
  EXPECT_EQ(set.kind, Kind::ioctl);
  EXPECT_EQ(b_->limits.max_storage_size.load(), 1u << 20);
  EXPECT_EQ(a_->registry.find(new_group), nullptr);
  EXPECT_EQ(fill(new_group), 100);  // grown by a, which never installed it
  set = call([&](Reply r) { a_->cluster.set_params(std::move(r), 1024, 1 << 20); });
  EXPECT_EQ(b_->limits.max_message_size.load(), 1024u);
}

// The first claim of a message decides who reads it: a message another
// reader claimed first (here a claim appended by hand, of a reader that
// died before deleting its message) is never returned, the next one is,
// and the dead reader's message leaves the stream once a read saw it
// oldest for the sweep's 2 s.
TEST_F(ClusterGroupsTest, TheFirstClaimDecidesAndADeadReadersMessageIsSwept) {
  const unsigned d = 4;
  EXPECT_EQ(write(*a_, d, "taken").value, 5);  // sequence 1 of a new stream
  EXPECT_EQ(write(*a_, d, "free").value, 4);   // 2
  Inspector in;
  ASSERT_NO_FATAL_FAILURE(connect(in));
  ASSERT_EQ(js_Publish(nullptr, in.js, "smtest.claim.4.1", "a-dead-reader", 13, nullptr, nullptr), NATS_OK);
  EXPECT_EQ(read(*b_, d), "free");
  EXPECT_EQ(read(*a_, d), "");
  EXPECT_FALSE(b_->cluster.readable(b_->group(d)));
  auto stored = [&] { return in.messages("smtest_g4"); };
  // The winner deleted "free"; the dead reader's message is left to the
  // upkeep's sweep, which may already have run on a slow machine (it is due
  // 2 s after the sweep first saw it): at most that one.
  EXPECT_LE(stored(), 1u);
  for (int i = 0; i < 100 && stored() != 0; ++i) {
    EXPECT_EQ(read(*b_, d), "");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(stored(), 0u);
}

// A won read whose delete fails still answers; the message is deleted
// later by the upkeep thread, with no other read (else, once its claims
// expired, it would be read again).
TEST_F(ClusterGroupsTest, AReadMessageWhoseDeleteFailedIsDeletedWithoutAnotherRead) {
  const unsigned d = 5;
  EXPECT_EQ(write(*a_, d, "once").value, 4);
  Inspector in;
  ASSERT_NO_FATAL_FAILURE(connect(in));
  auto stored = [&] { return in.messages("smtest_g5"); };
  a_->cluster.fail_deletes_for_testing(true);
  b_->cluster.fail_deletes_for_testing(true);
  EXPECT_EQ(read(*b_, d), "once");
  EXPECT_EQ(stored(), 1u);  // its delete failed
  a_->cluster.fail_deletes_for_testing(false);
  b_->cluster.fail_deletes_for_testing(false);
  for (int i = 0; i < 300 && stored() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(stored(), 0u);
}

// A read whose caller was interrupted before it ran takes nothing: EINTR,
// and the message is the next reader's.
TEST_F(ClusterGroupsTest, AnInterruptedReadTakesNothing) {
  const unsigned d = 6;
  EXPECT_EQ(write(*a_, d, "kept").value, 4);
  std::uintptr_t id = ++next_;
  Reply r = replies_.make(id);
  replies_.interrupt(id);
  b_->cluster.read(b_->group(d), std::move(r), 4096);
  ASSERT_TRUE(replies_.wait_answered(id));
  EXPECT_EQ(replies_.answer_to(id)->value, EINTR);
  EXPECT_EQ(read(*b_, d), "kept");
}

TEST(ClusterGroupsNoServer, RequestsFailEioWithinTheDeadline) {
  boost::asio::io_context io;
  Limits limits;
  CountingListener pollers;
  ClusterOptions o;
  o.servers = "nats://127.0.0.1:" + std::to_string(free_port());  // nobody listens
  o.timeout_ms = 300;
  ClusterGroups cluster(o, limits, pollers);
  Registry registry(io.get_executor(), limits, {.max_groups = 2, .listener = &cluster});
  std::string error;
  ASSERT_TRUE(cluster.start(registry, error)) << error;
  RecordingReplies replies;
  Group& g = *registry.install(1)->group;
  auto t0 = std::chrono::steady_clock::now();
  cluster.write(g, replies.make(1), std::as_bytes(std::span("x", 1)));
  cluster.read(g, replies.make(2), 10);
  ASSERT_TRUE(replies.wait_answered(1) && replies.wait_answered(2));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(replies.answer_to(1)->value, EIO);
  EXPECT_EQ(replies.answer_to(2)->value, EIO);
  cluster.stop();
  registry.shutdown();
}

}  // namespace
}  // namespace synchmess
