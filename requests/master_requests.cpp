#include "requests/master_requests.h"

#include <fcntl.h>

#include <cstring>
#include <utility>

#include "requests/log.h"
#include "requests/stats_requests.h"
#include "synchmess_interface.h"

namespace synchmess {

Result<void> check_limits(std::size_t max_message_size, std::size_t max_storage_size) {
  if (max_message_size == 0 || max_message_size > Limits::largest_max_message_size)
    return fail(Errc::invalid_argument);
  if (max_storage_size == 0 || max_storage_size > Limits::largest_max_storage_size)
    return fail(Errc::invalid_argument);
  return {};
}

void MasterRequests::open(Reply reply, fuse_file_info& fi) {
  if ((fi.flags & O_ACCMODE) != O_RDONLY) {
    reply.fail(Errc::not_permitted);
    return;
  }
  fi.direct_io = 1;
  fi.nonseekable = 1;
  reply.open(fi);
}

void MasterRequests::install(Reply reply, unsigned descriptor, Finish finish) {
  auto installed = registry_.install(descriptor);
  if (!installed) {
    reply.fail(installed.error());
    return;
  }
  if (installed->created) log::info("group {} installed", descriptor);
  transport_.ensure_group(
      descriptor, [this, descriptor, r = std::move(reply), f = std::move(finish)](
                      Result<void> made) mutable {
        if (!made) {
          r.fail(made.error());
          return;
        }
        f(std::move(r), transport_.group_path(descriptor));
      });
}

void MasterRequests::ioctl(Reply reply, IoctlSpec spec, std::span<const std::byte> in) {
  switch (spec.op) {
    case IoctlOp::get_params: {
      synchmess_params p{limits_.max_message_size.load(), limits_.max_storage_size.load()};
      reply.ioctl(0, std::as_bytes(std::span(&p, 1)));
      return;
    }
    case IoctlOp::set_params: {
      const fuse_ctx* ctx = reply.context();
      if (ctx == nullptr || ctx->uid != 0) {
        reply.fail(Errc::not_permitted);
        return;
      }
      if (in.size() < sizeof(synchmess_params)) {
        reply.fail(Errc::bad_address);
        return;
      }
      synchmess_params p;
      std::memcpy(&p, in.data(), sizeof p);
      std::size_t msg = p.max_message_size ? p.max_message_size : limits_.max_message_size.load();
      std::size_t store = p.max_storage_size ? p.max_storage_size : limits_.max_storage_size.load();
      if (auto ok = check_limits(msg, store); !ok) {
        reply.fail(ok.error());
        return;
      }
      limits_.max_message_size.store(msg);
      limits_.max_storage_size.store(store);
      // Every group publishes the limits to its fast-path clients and, when
      // the storage limit rose above what its segment holds, grows it.
      for (Group* g = registry_.find_from(1); g != nullptr; g = registry_.find_from(g->descriptor() + 1))
        g->apply_limits();
      log::info("parameters set: max_message_size={} max_storage_size={}", msg, store);
      reply.ioctl(0);
      return;
    }
    case IoctlOp::get_stats: {
      auto up = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
      synchmess_stats st = daemon_stats(registry_, limits_, transport_.name(), up);
      reply.ioctl(0, std::as_bytes(std::span(&st, 1)));
      return;
    }
    case IoctlOp::get_group_stats: {
      auto st = group_stats(registry_, in);
      if (!st) {
        reply.fail(st.error());
        return;
      }
      reply.ioctl(0, std::as_bytes(std::span(&*st, 1)));
      return;
    }
    default:  // install is routed by the transport; the rest is for groups
      reply.fail(Errc::not_permitted);
      return;
  }
}

}  // namespace synchmess
