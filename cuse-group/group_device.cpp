#include "cuse-group/group_device.h"

#include <sys/uio.h>

#include "core/ioctl_codec.h"
#include "cuse-group/cuse_device.h"
#include "requests/reply.h"

namespace synchmess {
namespace {

CuseGroupHost& host(fuse_req_t req) { return *static_cast<CuseGroupHost*>(CuseDevice::of(req).owner()); }

// The group of the device (installed before its device was made).
Group* group(fuse_req_t req) { return host(req).registry.find(CuseDevice::of(req).descriptor()); }


void op_open(fuse_req_t req, fuse_file_info* fi) {
  if (Group* g = group(req))
    host(req).requests.open(*g, Reply(req), *fi);
  else
    Reply(req).fail(Errc::no_such_group);
}

void op_read(fuse_req_t req, size_t size, off_t, fuse_file_info*) {
  if (Group* g = group(req))
    host(req).requests.read(*g, Reply(req), size);
  else
    Reply(req).fail(Errc::no_such_group);
}

void op_write(fuse_req_t req, const char* buf, size_t size, off_t, fuse_file_info*) {
  if (Group* g = group(req))
    host(req).requests.write(*g, Reply(req), std::as_bytes(std::span(buf, size)));
  else
    Reply(req).fail(Errc::no_such_group);
}

void op_release(fuse_req_t req, fuse_file_info* fi) {
  if (Group* g = group(req))
    host(req).requests.release(*g, Reply(req), *fi);
  else
    Reply(req).ok();
}

void op_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info*, unsigned, const void* in,
              size_t in_size, size_t out_size) {
  Group* g = group(req);
  if (g == nullptr) {
    Reply(req).fail(Errc::no_such_group);
    return;
  }
  IoctlSpec spec = decode_ioctl(static_cast<std::uint32_t>(cmd));
  Reply reply(req);
  if (CuseDevice::fetch_arguments(reply, spec, arg, in_size, out_size)) return;
  host(req).requests.ioctl(*g, std::move(reply), spec,
                           std::as_bytes(std::span(static_cast<const char*>(in), in_size)));
}

void op_poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph) {
  if (Group* g = group(req)) {
    host(req).requests.poll(*g, Reply(req), *fi, ph);
    return;
  }
  if (ph) fuse_pollhandle_destroy(ph);
  Reply(req).fail(Errc::no_such_group);
}

const cuse_lowlevel_ops group_ops = {
    .init = CuseDevice::on_init,
    .init_done = CuseDevice::on_init_done,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .ioctl = op_ioctl,
    .poll = op_poll,
};

}  // namespace

const cuse_lowlevel_ops& cuse_group_ops() noexcept { return group_ops; }

}  // namespace synchmess
