// core_bench - send+receive throughput of the core's group, beside a
// mutex+deque baseline in the same run.  Not a test: it prints numbers.
//   build/core/core_bench
#include <benchmark/benchmark.h>

#include <array>
#include <deque>
#include <memory>
#include <mutex>

#include "core/group.h"
#include "core/test_support.h"

namespace synchmess {
namespace {

constexpr std::size_t message_size = 128;

// One group shared by all threads of a benchmark (set up by thread 0).
struct CoreFixture {
  testing::IoThread io;
  Limits limits;
  Group group{io.executor(), limits, {.descriptor = 1, .reserve_nodes = 4096}};
  ~CoreFixture() { group.shutdown(); }
};

struct DequeBaseline {
  std::mutex mu;
  std::deque<std::unique_ptr<std::array<std::byte, message_size>>> q;
};

void BM_CoreSendReceive(benchmark::State& state) {
  static std::unique_ptr<CoreFixture> fx;  // benchmark-local; shared by its threads
  if (state.thread_index() == 0) fx = std::make_unique<CoreFixture>();
  std::array<std::byte, message_size> buf{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(fx->group.send(buf));
    benchmark::DoNotOptimize(fx->group.receive_into(buf));
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    while (fx->group.receive()) {
    }
  }
}

void BM_MutexDequeSendReceive(benchmark::State& state) {
  static std::unique_ptr<DequeBaseline> fx;
  if (state.thread_index() == 0) fx = std::make_unique<DequeBaseline>();
  std::array<std::byte, message_size> buf{};
  for (auto _ : state) {
    auto m = std::make_unique<std::array<std::byte, message_size>>(buf);
    {
      std::lock_guard lock(fx->mu);
      fx->q.push_back(std::move(m));
    }
    std::unique_ptr<std::array<std::byte, message_size>> got;
    {
      std::lock_guard lock(fx->mu);
      if (!fx->q.empty()) {
        got = std::move(fx->q.front());
        fx->q.pop_front();
      }
    }
    if (got) buf = *got;
    benchmark::DoNotOptimize(buf);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_CoreSendReceive)->Threads(1)->Threads(4)->UseRealTime();
BENCHMARK(BM_MutexDequeSendReceive)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace synchmess

BENCHMARK_MAIN();
