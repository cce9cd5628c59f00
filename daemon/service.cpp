#include "daemon/service.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "cluster/cluster_groups.h"
#include "core/registry.h"
#include "core/size_limits.h"
#include "requests/fast_tickets.h"
#include "requests/group_requests.h"
#include "requests/log.h"
#include "daemon/fast_path.h"
#include "daemon/memory_trimmer.h"
#include "daemon/notifier.h"
#include "cuse-master/cuse_transport.h"
#include "fuse-fs/fuse_transport.h"

namespace synchmess {
namespace {

// Whether the CUSE transport can run.  With --no-modprobe (the packaged
// service, which may not load modules: modules-load.d loads cuse at boot)
// only /dev/cuse is looked at; otherwise cuse_available() may run modprobe.
bool cuse_usable(const Options& options, std::string& why) {
  if (!options.no_modprobe) return cuse_available(why);
  if (::access("/dev/cuse", F_OK) == 0) {
    why = "/dev/cuse exists";
    return true;
  }
  why = "no /dev/cuse: the cuse module is not loaded (--no-modprobe: not loading it; "
        "`modprobe cuse` as root loads it)";
  return false;
}

}  // namespace

struct Service::State {
  explicit State(Options o)
      : options(std::move(o)),
        threads(options.threads ? options.threads
                                : std::max(2u, std::thread::hardware_concurrency())),
        io(1),
        groups(io, options.max_groups),
        cluster(options.cluster.servers.empty()
                    ? nullptr
                    : std::make_unique<ClusterGroups>(options.cluster, limits, groups)),
        registry(io.get_executor(), limits,
                 {.max_groups = options.max_groups,
                  .listener = cluster ? static_cast<GroupListener*>(cluster.get()) : &groups}) {
    limits.max_message_size = options.max_message_size;
    limits.max_storage_size = options.max_storage_size;
  }

  Options options;
  unsigned threads;  // request threads
  // The service's own loop, one thread: signals, timers (delays), the
  // remote writer, interrupts, notifications.  Never reads requests.
  boost::asio::io_context io;
  // CUSE: one loop per request thread (concurrency hint 1), each serving
  // its share of the devices.  FUSE reads with threads of its own.
  std::vector<std::unique_ptr<boost::asio::io_context>> loops;
  Limits limits;
  GroupRequests groups;
  std::unique_ptr<ClusterGroups> cluster;  // --cluster: the groups' backend
  Registry registry;
  FastTickets tickets;
  std::unique_ptr<FastPath> fast;  // null: --no-fast, --cluster, or its socket failed
  std::unique_ptr<Transport> transport;
};

Service::Service(Options options) : state_(std::make_unique<State>(std::move(options))) {}
Service::~Service() = default;

int Service::run(std::function<void()> ready) {
  State& s = *state_;
  // Stops the service once, from any thread: on a signal (exit 0) or when
  // the transport lost its master device or mount (exit 1).
  int exit_code = 0;
  std::atomic<bool> stopping{false};
  std::function<void(int, std::string)> stop_service;
  auto lost = [&](std::string why) {
    boost::asio::post(s.io, [&stop_service, w = std::move(why)] { stop_service(1, w); });
  };
  // Signals first: a SIGTERM during start-up must stop us cleanly too.
  boost::asio::signal_set signals(s.io, SIGTERM, SIGINT);
  signals.add(SIGHUP);
  signals.add(SIGUSR1);
  Notifier notifier(s.io);
  MemoryTrimmer trimmer(s.io);

  TransportKind kind = s.options.transport;
  std::string why;
  if (kind == TransportKind::automatic) {
    kind = cuse_usable(s.options, why) ? TransportKind::cuse : TransportKind::fuse;
    log::info("transport {} chosen automatically: {}", kind == TransportKind::cuse ? "cuse" : "fuse", why);
  } else if (kind == TransportKind::cuse && !cuse_usable(s.options, why)) {
    log::error("{}; this kernel cannot serve character devices from user space: "
               "use --transport=fuse (or auto) to serve {} as a FUSE filesystem",
               why, s.options.dev_dir);
    return 1;
  }
  std::vector<boost::asio::io_context*> loops;
  if (kind == TransportKind::cuse) {
    for (unsigned i = 0; i < s.threads; ++i) {
      s.loops.push_back(std::make_unique<boost::asio::io_context>(1));
      loops.push_back(s.loops.back().get());
    }
  }
  // FUSE readers follow the load (session_readers.h): at most --threads, by
  // default as many as libfuse's loop may start (10), at least two per core.
  const unsigned fuse_readers =
      s.options.threads ? s.options.threads : std::max(10u, 2 * std::thread::hardware_concurrency());
  const unsigned request_threads = kind == TransportKind::cuse ? s.threads : fuse_readers;
  TransportContext ctx{.io = s.io,
                       .loops = loops,
                       .request_threads = request_threads,
                       .registry = s.registry,
                       .limits = s.limits,
                       .groups = s.groups,
                       .dev_dir = s.options.dev_dir,
                       .lost = lost};
  s.transport = kind == TransportKind::cuse ? make_cuse_transport(ctx) : make_fuse_transport(ctx);

  auto guard = boost::asio::make_work_guard(s.io);
  using LoopGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<LoopGuard> loop_guards;
  for (auto& loop : s.loops) loop_guards.push_back(boost::asio::make_work_guard(*loop));
  auto stop_loops = [&] {
    for (auto& g : loop_guards) g.reset();
    for (auto& loop : s.loops) loop->stop();
  };
  stop_service = [&](int code, const std::string& reason) {
    if (stopping.exchange(true)) return;
    if (code == 0)
      log::info("{}: stopping", reason);
    else
      log::error("{}: stopping with exit status {} so that a supervisor restarts the service", reason, code);
    exit_code = code;
    if (s.fast) s.fast->stop();
    notifier.stop();
    trimmer.stop();
    s.transport->begin_stop();
    s.registry.shutdown();  // sleepers get EINTR, timers stop
    s.groups.shutdown();
    guard.reset();
    boost::system::error_code ignored;
    signals.cancel(ignored);
    s.io.stop();
    stop_loops();
  };
  if (s.cluster) {
    std::string error;
    if (auto started = s.cluster->start(s.registry, error); !started) {
      log::error("{}", error);
      return 1;
    }
    s.groups.set_backend(s.cluster.get());
  }
  if (!s.options.no_fast && !s.cluster) {
    // The shared-memory fast path (docs/abi.md): without its socket the
    // daemon still serves everything through the devices.
    s.fast = std::make_unique<FastPath>(s.io, s.registry, s.tickets, s.options.fast_socket);
    std::string fast_error;
    s.fast->on_repaired([&s](Group&) { s.groups.retry_parked_now(); });
    if (s.fast->start(fast_error)) {
      s.groups.set_fast(&s.tickets, s.options.fast_socket);
      log::info("fast path: hand-out socket {}", s.options.fast_socket);
    } else {
      log::warn("fast path off (clients use the devices): {}", fast_error);
      s.fast.reset();
    }
  }
  std::vector<std::thread> pool;
  pool.emplace_back([&] { s.io.run(); });
  for (auto& loop : s.loops) pool.emplace_back([l = loop.get()] { l->run(); });

  std::string error;
  if (auto started = s.transport->start(error); !started) {
    log::error("cannot start the {} transport: {}", s.transport->name(), error);
    s.transport->begin_stop();
    guard.reset();
    s.io.stop();
    stop_loops();
    for (auto& t : pool) t.join();
    if (s.cluster) s.cluster->stop();
    s.transport->finish_stop();
    return 1;
  }
  log::info("serving {} over {} with {}{} request threads (max {} groups, max message {} B, storage {} B per group)",
            s.options.dev_dir, s.transport->name(), kind == TransportKind::cuse ? "" : "up to ", request_threads,
            s.options.max_groups,
            s.options.max_message_size, s.options.max_storage_size);
  if (ready) ready();
  auto status = [&] {  // scans the registry: for SIGUSR1 and the watchdog pings, not a hot path
    unsigned groups = 0;
    for (unsigned d = 1; d <= s.registry.max_groups(); ++d) groups += s.registry.find(d) != nullptr;
    return fmt::format("serving {} over {}, {} groups", s.options.dev_dir, s.transport->name(), groups);
  };
  notifier.ready(status());
  trimmer.start();
  notifier.start_watchdog(status);

  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP || sig == SIGUSR1) {  // SIGHUP: nothing to reload, the limits change by ioctl
      if (sig == SIGUSR1) {
        auto text = status();
        log::info("status: {}", text);
        notifier.status(text);
      }
      signals.async_wait(on_signal);
      return;
    }
    stop_service(0, fmt::format("signal {}", sig));
  };
  signals.async_wait(on_signal);
  for (auto& t : pool) t.join();
  // Handlers that were queued when the pool stopped may own requests:
  // run them now, while the sessions they answer still exist.
  s.io.restart();
  s.io.poll();
  for (auto& loop : s.loops) {
    loop->restart();
    loop->poll();
  }
  if (s.cluster) s.cluster->stop();  // answers what its threads still hold
  s.transport->finish_stop();
  log::info("stopped");
  return exit_code;
}

}  // namespace synchmess
