#include "cuse-master/cuse_transport.h"

#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/ioctl_codec.h"
#include "cuse-group/group_device.h"
#include "cuse-group/cuse_device.h"
#include "requests/log.h"
#include "requests/master_requests.h"
#include "requests/reply.h"
#include "synchmess_interface.h"

namespace synchmess {
namespace {

// How long start() waits for the kernel to create the master device.
constexpr std::chrono::seconds master_creation_timeout{10};

class CuseTransport final : public Transport {
 public:
  explicit CuseTransport(TransportContext ctx)
      : ctx_(std::move(ctx)), master_(ctx_.registry, ctx_.limits, *this, &ctx_.groups), host_{ctx_.registry, ctx_.groups} {}
  ~CuseTransport() override { finish_stop(); }

  Result<void> start(std::string& error) override;
  void ensure_group(unsigned d, Done done) override;
  std::string group_path(unsigned d) const override { return ctx_.dev_dir + "/synchmess" + std::to_string(d); }
  void begin_stop() override;
  void finish_stop() override;
  const char* name() const noexcept override { return "cuse"; }

  MasterRequests& master() { return master_; }

 private:
  struct GroupDevice {
    std::unique_ptr<CuseDevice> device;
    bool ready = false;
    std::vector<Done> waiters;
  };
  void group_state(unsigned d, bool ready);
  // The request loop that serves device d (0: the master): devices are
  // spread over the loops, so each request is read and answered by one
  // thread; the service's loop when there are none.
  boost::asio::io_context& loop_for(unsigned d) const {
    return ctx_.loops.empty() ? ctx_.io : *ctx_.loops[d % ctx_.loops.size()];
  }
  void master_state(bool ready);

  TransportContext ctx_;
  MasterRequests master_;
  CuseGroupHost host_;
  std::string prefix_;  // devname prefix under /dev, e.g. "synch/"
  std::unique_ptr<CuseDevice> master_device_;
  unsigned major_ = 0;
  std::mutex mu_;
  std::map<unsigned, GroupDevice> groups_;
  std::vector<std::unique_ptr<CuseDevice>> failed_;  // destroyed at stop
  enum class MasterState { starting, ready, failed };
  std::condition_variable master_cv_;
  MasterState master_state_ = MasterState::starting;
  bool stopping_ = false;
};

// --- the master's operations table ---------------------------------------

CuseTransport& transport(fuse_req_t req) { return *static_cast<CuseTransport*>(CuseDevice::of(req).owner()); }

void op_open(fuse_req_t req, fuse_file_info* fi) { transport(req).master().open(Reply(req), *fi); }
void op_read(fuse_req_t req, size_t, off_t, fuse_file_info*) { Reply(req).fail(Errc::not_permitted); }
void op_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*) { Reply(req).fail(Errc::not_permitted); }
void op_release(fuse_req_t req, fuse_file_info*) { Reply(req).ok(); }

void op_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info*, unsigned, const void* in,
              size_t in_size, size_t out_size) {
  IoctlSpec spec = decode_ioctl(static_cast<std::uint32_t>(cmd));
  bool master_op = spec.op == IoctlOp::install_group || spec.op == IoctlOp::get_params ||
                   spec.op == IoctlOp::set_params || spec.op == IoctlOp::get_stats ||
                   spec.op == IoctlOp::get_group_stats;
  if (!master_op) {
    Reply(req).fail(Errc::unknown_request);
    return;
  }
  Reply reply(req);
  if (CuseDevice::fetch_arguments(reply, spec, arg, in_size, out_size)) return;
  auto& master = transport(req).master();
  if (spec.op != IoctlOp::install_group) {
    master.ioctl(std::move(reply), spec, std::as_bytes(std::span(static_cast<const char*>(in), in_size)));
    return;
  }
  group_t g;
  std::memcpy(&g, in, sizeof g);
  master.install(std::move(reply), g.descriptor, [g](Reply r, std::string path) mutable {
    std::memset(g.device_path, 0, sizeof g.device_path);
    std::memcpy(g.device_path, path.data(), std::min(path.size(), sizeof g.device_path - 1));
    r.ioctl(0, std::as_bytes(std::span(&g, 1)));
  });
}

const cuse_lowlevel_ops master_ops = {
    .init = CuseDevice::on_init,
    .init_done = CuseDevice::on_init_done,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .ioctl = op_ioctl,
};

// --- devices --------------------------------------------------------------

Result<void> CuseTransport::start(std::string& error) {
  const std::string& dir = ctx_.dev_dir;
  if (dir == "/dev") {
    prefix_ = "";
  } else if (dir.rfind("/dev/", 0) == 0 && dir.size() > 5) {
    prefix_ = dir.substr(5) + "/";
  } else {
    error = "with CUSE, --dev-dir must lie under /dev (the kernel names the devices), not " + dir;
    return fail(Errc::invalid_argument);
  }
  if (::access(("/dev/" + prefix_ + "synchmess").c_str(), F_OK) == 0) {
    error = "/dev/" + prefix_ + "synchmess already exists: another synchmessd or the SynchMess kernel module serves it";
    return fail(Errc::device_failed);
  }
  master_device_ = std::make_unique<CuseDevice>(
      loop_for(0), CuseDeviceOptions{.devname = prefix_ + "synchmess",
                                 .major = 0,
                                 .minor = 0,
                                 .ops = &master_ops,
                                 .owner = this,
                                 .on_state = [this](bool ready) { master_state(ready); }});
  if (!master_device_->open(error)) return fail(Errc::device_failed);
  std::unique_lock lock(mu_);
  if (!master_cv_.wait_for(lock, master_creation_timeout,
                           [&] { return master_state_ != MasterState::starting; })) {
    error = "the kernel did not create the master device within " +
            std::to_string(master_creation_timeout.count()) + " s";
    return fail(Errc::device_failed);
  }
  if (master_state_ != MasterState::ready) {
    error = "the kernel refused the master device";
    return fail(Errc::device_failed);
  }
  major_ = major(master_device_->device_number());
  log::info("master device /dev/{}synchmess is {}:0", prefix_, major_);
  return {};
}

void CuseTransport::master_state(bool ready) {
  {
    std::lock_guard lock(mu_);
    if (master_state_ != MasterState::starting) {  // it was ready and the kernel ended it
      if (!stopping_ && ctx_.lost) ctx_.lost("the kernel ended the master device's session");
      return;
    }
    master_state_ = ready ? MasterState::ready : MasterState::failed;
  }
  master_cv_.notify_all();
}

void CuseTransport::ensure_group(unsigned d, Done done) {
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    done(fail(Errc::shutting_down));
    return;
  }
  GroupDevice& gd = groups_[d];
  if (gd.ready) {
    lock.unlock();
    done({});
    return;
  }
  gd.waiters.push_back(std::move(done));
  if (gd.device) return;  // being created: its state change reports us
  gd.device = std::make_unique<CuseDevice>(
      loop_for(d), CuseDeviceOptions{.devname = prefix_ + "synchmess" + std::to_string(d),
                                 .major = major_,
                                 .minor = d,
                                 .ops = &cuse_group_ops(),
                                 .owner = &host_,
                                 .descriptor = d,
                                 .on_state = [this, d](bool ready) { group_state(d, ready); }});
  std::string error;
  if (!gd.device->open(error)) {
    log::error("group {}: cannot create its device: {}", d, error);
    auto waiters = std::move(gd.waiters);
    // Keep the failed device until shutdown (its pump may still hold it);
    // mark it so the next install tries again with a fresh one.
    failed_.push_back(std::move(gd.device));
    groups_.erase(d);
    lock.unlock();
    for (auto& w : waiters) w(fail(Errc::device_failed));
  }
}

void CuseTransport::group_state(unsigned d, bool ready) {
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = groups_.find(d);
    if (it == groups_.end()) return;
    waiters = std::move(it->second.waiters);
    if (ready) {
      it->second.ready = true;
    } else {
      log::error("group {}: device /dev/{}synchmess{} failed", d, prefix_, d);
      failed_.push_back(std::move(it->second.device));
      groups_.erase(it);
    }
  }
  for (auto& w : waiters) w(ready ? Result<void>{} : fail(Errc::device_failed));
}

void CuseTransport::begin_stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  if (master_device_) master_device_->stop();
  for (auto& [d, gd] : groups_)
    if (gd.device) gd.device->stop();
  for (auto& dev : failed_) dev->stop();
}

// After the pool stopped: answer waiters, then remove every device.
void CuseTransport::finish_stop() {
  std::map<unsigned, GroupDevice> groups;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    groups.swap(groups_);
  }
  for (auto& [d, gd] : groups)
    for (auto& w : gd.waiters) w(fail(Errc::shutting_down));
  groups.clear();
  failed_.clear();
  master_device_.reset();
}

}  // namespace

std::unique_ptr<Transport> make_cuse_transport(TransportContext ctx) {
  return std::make_unique<CuseTransport>(std::move(ctx));
}

bool cuse_available(std::string& why) { return cuse_present(why); }

}  // namespace synchmess
