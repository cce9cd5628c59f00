#include "core/registry.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace synchmess {

Registry::Registry(boost::asio::any_io_executor executor, const Limits& limits,
                   RegistryOptions options)
    : executor_(std::move(executor)),
      limits_(limits),
      options_(options),
      max_groups_(std::clamp(options.max_groups, 1u, RegistryOptions::largest_max_groups)),
      slots_(std::make_unique<std::atomic<Group*>[]>(max_groups_)) {
  for (unsigned i = 0; i < max_groups_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

Registry::~Registry() { shutdown(); }

Result<Registry::Installed> Registry::install(unsigned descriptor) {
  if (descriptor < 1 || descriptor > max_groups_) return fail(Errc::bad_descriptor);
  if (Group* g = find(descriptor)) return Installed{g, false};
  std::lock_guard lock(install_mu_);
  if (stopped_) return fail(Errc::shutting_down);
  if (Group* g = find(descriptor)) return Installed{g, false};
  std::unique_ptr<Group> group;
  try {
    group = std::make_unique<Group>(executor_, limits_,
                                    GroupOptions{.descriptor = descriptor,
                                                 .reserve_nodes = options_.reserve_nodes,
                                                 .listener = options_.listener});
  } catch (const std::exception&) {  // no memory or descriptors for its segment
    return fail(Errc::out_of_memory);
  }
  Group* g = group.get();
  owned_.push_back(std::move(group));
  slots_[descriptor - 1].store(g, std::memory_order_release);
  installed_.fetch_add(1, std::memory_order_relaxed);
  return Installed{g, true};
}

Group* Registry::find(unsigned descriptor) const noexcept {
  if (descriptor < 1 || descriptor > max_groups_) return nullptr;
  return slots_[descriptor - 1].load(std::memory_order_acquire);
}

Group* Registry::find_from(unsigned descriptor) const noexcept {
  for (unsigned d = std::max(descriptor, 1u); d <= max_groups_; ++d)
    if (Group* g = slots_[d - 1].load(std::memory_order_acquire)) return g;
  return nullptr;
}

std::size_t Registry::stored_bytes() const noexcept {
  std::size_t sum = 0;
  for (unsigned i = 0; i < max_groups_; ++i)
    if (Group* g = slots_[i].load(std::memory_order_acquire)) sum += g->stored_bytes();
  return sum;
}

void Registry::shutdown() {
  std::vector<Group*> groups;
  {
    std::lock_guard lock(install_mu_);
    stopped_ = true;
    for (auto& g : owned_) groups.push_back(g.get());
  }
  for (Group* g : groups) g->shutdown();
}

}  // namespace synchmess
