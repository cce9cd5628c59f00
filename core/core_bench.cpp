// core_bench - messages per second through one core group (1 thread doing
// send+receive; 2 senders x 2 receivers), beside a
// mutex+deque baseline in the same run.  Not a test: it prints numbers.
//   build/core/core_bench
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "core/group.h"
#include "core/test_support.h"

namespace synchmess {
namespace {

constexpr std::size_t message_size = 128;
// The group's default storage limit, in messages: the baseline refuses
// beyond it too, so both hold the same amount when receivers fall behind.
constexpr std::size_t limit_messages = Limits::default_max_storage_size / message_size;

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

// Threads(1): one thread sends and receives.  Threads(4): "2x2", threads 0
// and 1 send, 2 and 3 receive; items are messages received.
void BM_CoreSendReceive(benchmark::State& state) {
  static std::unique_ptr<CoreFixture> fx;  // benchmark-local; shared by its threads
  if (state.thread_index() == 0) fx = std::make_unique<CoreFixture>();
  std::array<std::byte, message_size> buf{};
  const bool pair = state.threads() == 1;
  const bool sender = state.thread_index() < state.threads() / 2;
  std::int64_t received = 0;
  for (auto _ : state) {
    if (pair || sender) {
      // A full group (receivers behind) just refuses: count nothing.
      benchmark::DoNotOptimize(fx->group.send(buf));
    }
    if (pair || !sender) received += fx->group.receive_into(buf) > 0 ? 1 : 0;
  }
  state.SetItemsProcessed(received);
  if (state.thread_index() == 0) {
    while (fx->group.receive()) {
    }
  }
}

void BM_MutexDequeSendReceive(benchmark::State& state) {
  static std::unique_ptr<DequeBaseline> fx;
  if (state.thread_index() == 0) fx = std::make_unique<DequeBaseline>();
  std::array<std::byte, message_size> buf{};
  const bool pair = state.threads() == 1;
  const bool sender = state.thread_index() < state.threads() / 2;
  std::int64_t received = 0;
  for (auto _ : state) {
    if (pair || sender) {
      auto m = std::make_unique<std::array<std::byte, message_size>>(buf);
      std::lock_guard lock(fx->mu);
      if (fx->q.size() < limit_messages) fx->q.push_back(std::move(m));
    }
    if (pair || !sender) {
      std::unique_ptr<std::array<std::byte, message_size>> got;
      {
        std::lock_guard lock(fx->mu);
        if (!fx->q.empty()) {
          got = std::move(fx->q.front());
          fx->q.pop_front();
        }
      }
      if (got) {
        buf = *got;
        ++received;
      }
    }
    benchmark::DoNotOptimize(buf);
  }
  state.SetItemsProcessed(received);
}

BENCHMARK(BM_CoreSendReceive)->Threads(1)->Threads(4)->UseRealTime();
BENCHMARK(BM_MutexDequeSendReceive)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace synchmess

BENCHMARK_MAIN();
