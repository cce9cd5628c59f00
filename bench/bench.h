// bench.h - synchmess-bench: the original SynchMess benchmark (a producer and
// a consumer process, two phases) against any target speaking the ABI, and
// the kernel-only baselines (pipe, POSIX mqueue).  See README.md.
//
// Contract: run_target() maps a ControlBlock (MAP_SHARED), prepares the
// transport, forks the consumer and producer processes, starts them
// together, waits (killing them by pid if they overrun) and adds up the
// figures.  Messages use the codec shared with the stress test (tests/codec).
//
// Thread safety: LogHistogram and ThreadStats have one writer each and are
// read by the parent after both processes exited (waitpid orders it);
// SeenSet::mark() is lock-free for any number of threads; run_target() is
// called from the single-threaded parent (it forks).
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace synchmess::bench {

inline std::uint64_t now_ns() {  // CLOCK_MONOTONIC: comparable across processes
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000ULL + std::uint64_t(ts.tv_nsec);
}

// Hand-written: Debian 12 packages no C/C++ HdrHistogram, and this one must
// be pointer-free to live in memory shared between processes.  Log-linear:
// 32 buckets per power of two (error < 3 %); percentiles report the bucket's
// upper edge clamped to the exact max, so they never under-report.
class LogHistogram {
 public:
  static constexpr int kSubBits = 5, kSub = 1 << kSubBits, kMaxExp = 42;
  static constexpr int kBuckets = (kMaxExp - kSubBits + 2) * kSub;
  void record(std::uint64_t ns);
  void merge(const LogHistogram& o);
  std::uint64_t percentile(double q) const;  // q in [0, 1]; 0 when empty
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }

 private:
  std::uint64_t count_ = 0, sum_ = 0, min_ = 0, max_ = 0;
  std::uint64_t buckets_[kBuckets] = {};
};

// Which (producer, seq) were delivered: one bit each, in lazily allocated
// chunks (null -> chunk exactly once by compare-exchange; bits only set).
// mark() is true the first time only; check() must not race with mark().
struct DeliveryCheck {
  std::uint64_t expected = 0, delivered = 0, missing = 0, unexpected = 0;
  void operator+=(const DeliveryCheck& o) {
    expected += o.expected, delivered += o.delivered, missing += o.missing, unexpected += o.unexpected;
  }
};
class SeenSet {
 public:
  static constexpr std::uint64_t kChunkBits = 1ULL << 20, kMaxChunks = 4096;
  explicit SeenSet(unsigned producers);
  ~SeenSet();
  bool mark(std::uint32_t producer, std::uint64_t seq);  // false: duplicate or out of range
  // Out-of-range marks count as unexpected.
  DeliveryCheck check(const std::vector<std::uint64_t>& written) const;

 private:
  using Word = std::atomic<std::uint64_t>;
  unsigned producers_;
  std::unique_ptr<std::atomic<Word*>[]> chunks_;  // producers_ * kMaxChunks
  std::atomic<std::uint64_t> out_of_range_{0};
};

inline constexpr unsigned kMaxThreads = 32;

// Operation types, each with its own histogram; kOpNames are the JSON keys.
enum Op : int {
  kInstall, kOpen, kWrite1, kReadHit1, kReadEmpty1, kWrite2, kReadHit2, kReadEmpty2, kFlush, kSetDelay,
  kSleep, kHandoff, kAwake, kRevoke, kDrainRead, kDeliver1, kDeliver2, kOpCount
};
inline constexpr const char* kOpNames[kOpCount] = {
    "install", "open", "write_p1", "read_hit_p1", "read_empty_p1", "write_p2", "read_hit_p2", "read_empty_p2",
    "flush", "set_delay", "sleep", "handoff", "awake", "revoke", "drain_read", "deliver_p1", "deliver_p2"};

// Error counters of a thread, summed per target.
enum Counter : int { kWriteFull, kWriteErrors, kReadErrors, kCorrupt, kDuplicates, kOtherErrors, kCounterCount };

struct alignas(64) ThreadStats {
  std::atomic<std::uint64_t> progress_ops{0}, progress_hits{0};  // sampled live
  std::uint64_t counter[kCounterCount] = {};
  LogHistogram hist[kOpCount];
};

// What the two workload processes and the parent share (one per run).
// Atomics are the hand-shake; plain fields are published by the release
// store of the flag next to them.
struct ControlBlock {
  std::atomic<std::uint32_t> ready{0}, go{0}, abort{0};
  std::uint64_t t0_ns = 0, deadline1_ns = 0;
  std::atomic<std::uint32_t> phase{1}, awake_calls{0};
  std::atomic<std::uint64_t> phase2_start_ns{0};
  unsigned awake_ok_count = 0;  // AWAKE calls that woke someone (consumer 0)
  std::uint64_t awake_ok_start_ns[kMaxThreads] = {};
  std::uint64_t woke_ns[kMaxThreads] = {};  // when each producer ran again
  std::atomic<std::uint32_t> futex_gen{0}, futex_waiting{0};  // baselines' SLEEP
  std::atomic<std::uint32_t> producers_done{0};
  std::uint64_t producers_done_ns = 0, written[kMaxThreads] = {};
  std::atomic<std::uint32_t> consumers_done{0};
  std::uint64_t final_start_ns = 0, consumers_done_ns = 0;
  DeliveryCheck check;
  std::uint64_t drained = 0;
  char flush_method[16] = {};
  char error[256] = {};  // first fatal error
  ThreadStats producer[kMaxThreads], consumer[kMaxThreads];
  ThreadStats final_step;  // consumer main thread: final flush/revoke/drain
  ThreadStats setup[2];    // install/open: [0] producers, [1] consumers
};

struct WorkloadOptions {
  unsigned threads = 8, groups = 64;
  std::uint64_t duration_ns = 30'000'000'000ULL;
  std::size_t message_size = 128;
  unsigned delay_ms = 1000;
  std::string flush = "auto", final_mode = "flush";  // auto|fsync|ioctl, flush|revoke
};

// The queues a workload runs against.  prepare() runs in the parent before
// fork (error text or ""); attach() in each workload process, on its own
// copy of the object (install/open every group, latencies into setup;
// error text or ""); cleanup() in the parent afterwards.  Groups are
// 0..groups-1 (descriptor - 1); calls return >= 0 or -errno, read() 0 for
// an empty group; all threads of a process share the object.
class Transport {
 public:
  virtual ~Transport() = default;
  std::string kind, description;
  bool has_delay = false;  // false: no delay, no flush (the baselines)
  virtual std::string prepare() = 0;
  virtual std::string attach(ControlBlock* cb, ThreadStats* setup) = 0;
  virtual void cleanup() {}
  virtual long write(unsigned g, const void* buf, std::size_t n) = 0;
  virtual long read(unsigned g, void* buf, std::size_t n) = 0;
  virtual int sleep(unsigned g) = 0;
  virtual long awake(unsigned g) = 0;
  virtual int flush(unsigned) { return 0; }
  virtual int set_delay(unsigned, unsigned) { return 0; }
  virtual int revoke(unsigned) { return 0; }
};

// name: "device", "floor" or "floor1" (the ABI at master), "pipe", "mqueue".
std::unique_ptr<Transport> make_transport(const std::string& name, const std::string& master,
                                          const WorkloadOptions& o);

// A target's figures, accumulated over its rounds.
struct TargetResult {
  std::string name, kind, description, error, flush_method;
  bool has_delay = false, ok = true;
  bool revoked_at_end = false;  // --final revoke: "missing" includes revoked
  unsigned rounds = 0;
  LogHistogram hist[kOpCount], final_hist[kOpCount];
  double phase1_s = 0, phase2_s = 0, final_s = 0;
  std::uint64_t awake_calls = 0, wake_all_ns = 0;  // wake_all: worst round
  DeliveryCheck check;
  std::uint64_t drained = 0, counter[kCounterCount] = {};
  std::vector<std::uint64_t> round_write_p50, round_read_p50;  // phase 1, ns
  std::vector<double> round_delivered_per_s;

  bool exactly_once() const {
    return ok && counter[kDuplicates] == 0 && counter[kCorrupt] == 0 &&
           check.unexpected == 0 && (check.missing == 0 || revoked_at_end);
  }
  double per_s_phase1(std::uint64_t n) const { return phase1_s > 0 ? double(n) / phase1_s : 0; }
  double delivered_per_s_phase1() const { return per_s_phase1(hist[kReadHit1].count()); }
};

// Runs one round of the workload on t and adds its figures to *r.
void run_target(Transport& t, const WorkloadOptions& o, bool progress, TargetResult* r);

// pairs.cpp: `clients` threads, each on its own group (1..clients) of the
// ABI at master, write a `size`-byte message and read it back until
// duration_ns passed; each pair's wall-clock time goes into *out, their
// number is added to *pairs.  Error text or "" (a failed call or a message
// read back wrong ends that thread).
// target: "device", "floor", "floor1" (the ABI at master through system
// calls: never through the fast path, even with the library loaded), "fast"
// (through the C library's read/write, i.e. libsynchmess-fast.so when the
// bench runs under synchmess-fast), "pipe" or "mqueue" (master unused).
std::string run_pairs(const std::string& target, const std::string& master, unsigned clients, std::size_t size,
                      std::uint64_t duration_ns, LogHistogram* out, std::uint64_t* pairs);

// Whether libsynchmess-fast.so is what read()/write() resolve to (the bench
// runs under synchmess-fast): the "fast" target needs it.
bool fast_path_loaded();

// pairs.cpp: one client thread alternating IOCTL_INSTALL_GROUP of group 1
// (installed already) on the master and a plain ioctl (IOCTL_AWAKE with no
// sleeper) on the group, each timed into its histogram, for duration_ns.
std::string run_ioctls(const std::string& master, std::uint64_t duration_ns, LogHistogram* install,
                       LogHistogram* plain);

// One target's pairs with one number of client threads (or, clients = 0,
// its install and plain ioctls: hist = install, plain = AWAKE), over its
// rounds.
struct PairsResult {
  std::string target, error;
  unsigned clients = 0;
  LogHistogram hist, plain;
  std::uint64_t pairs = 0;
  double seconds = 0;
  std::vector<std::uint64_t> round_p50;  // ns
};

// The command line (main.cpp).
struct Options {
  std::string master = "/dev/synch/synchmess";
  std::vector<std::string> targets = {"device", "floor", "floor1", "pipe", "mqueue"};
  WorkloadOptions w;
  unsigned rounds = 1, floor_threads = 10;
  std::string floor_master, floor1_master, floor_bin, json_path;
  bool no_progress = false;
  // Pairs (before the workload): these client-thread counts against the
  // ABI targets (device, floor, floor1), alternating, pair_rounds times.
  std::vector<unsigned> pair_clients = {1, 2, 4};
  unsigned pair_rounds = 5;
  double pair_seconds = 1.0;
  std::size_t pair_size = 64;
};

// report.cpp: the tables on stdout; the same figures (ns) with the machine
// and the options as JSON at path (error text or "").  Ratios compare the
// device with the better of the bare servers (floor, floor1) that ran.
void print_report(const std::vector<TargetResult>& rs, const std::vector<PairsResult>& pairs, const Options& o);
std::string write_json(const std::string& path, const std::vector<TargetResult>& rs,
                       const std::vector<PairsResult>& pairs, const Options& o);

}  // namespace synchmess::bench
