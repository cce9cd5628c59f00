#include "fuse-fs/fuse_transport.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "requests/fuse_api.h"
#include "requests/log.h"
#include "requests/master_requests.h"
#include "requests/reply.h"
#include "requests/session_pump.h"
#include "requests/session_readers.h"
#include "fuse-fs/remote_writer.h"
#include "synchmess_interface.h"

namespace synchmess {
namespace {

constexpr fuse_ino_t master_ino = 2;
constexpr double forever = 86400.0;  // names and attributes never change
constexpr std::string_view master_name = "synchmess";  // group N's name is master_name + N

// The directory's own errnos: a filesystem's answers about names and the
// tree, not part of the device ABI (no Errc; docs/abi.md "Devices").  Every
// errno a device's client sees comes from an Errc through Reply::fail.
namespace fs_errno {
constexpr int unknown_name = ENOENT;     // lookup or getattr of what does not exist
constexpr int not_directory = ENOTDIR;   // opendir or readdir of a file
constexpr int is_directory = EISDIR;     // open of the directory as a file
constexpr int read_only_tree = EPERM;    // create, mknod, mkdir, symlink, link, unlink, rmdir,
                                         // rename, setattr: the tree is the daemon's
}  // namespace fs_errno

// What a failed write of the install path into the caller tells the caller
// (the remote writer's errnos, remote_writer.h).
Errc remote_write_error(int err) noexcept {
  switch (err) {
    case EFAULT: return Errc::bad_address;  // not writable, or the helper missed its deadline
    case EAGAIN: return Errc::try_again;
    case ESHUTDOWN: return Errc::shutting_down;
    default: return Errc::not_permitted;  // process_vm_writev refused (EPERM, ESRCH, ...)
  }
}

class FuseTransport final : public Transport {
 public:
  explicit FuseTransport(TransportContext ctx)
      : ctx_(std::move(ctx)), master_(ctx_.registry, ctx_.limits, *this, &ctx_.groups), writer_(ctx_.io) {}
  ~FuseTransport() override { finish_stop(); }

  Result<void> start(std::string& error) override;
  void ensure_group(unsigned, Done done) override { done({}); }  // files exist once installed
  std::string group_path(unsigned d) const override { return ctx_.dev_dir + "/synchmess" + std::to_string(d); }
  void begin_stop() override {
    writer_.stop();
    if (readers_) readers_->stop();
  }
  void finish_stop() override;
  const char* name() const noexcept override { return "fuse"; }

  // Request handlers, reached through the static table below.
  static FuseTransport& of(fuse_req_t req) { return *static_cast<FuseTransport*>(fuse_req_userdata(req)); }
  void lookup(Reply r, fuse_ino_t parent, const char* name);
  void getattr(Reply r, fuse_ino_t ino);
  void readdir(Reply r, fuse_ino_t ino, std::size_t size, off_t off);
  void open(Reply r, fuse_ino_t ino, fuse_file_info* fi);
  void read(Reply r, fuse_ino_t ino, std::size_t size);
  void write(Reply r, fuse_ino_t ino, const char* buf, std::size_t size);
  void fsync(Reply r, fuse_ino_t ino);
  void ioctl(Reply r, fuse_ino_t ino, unsigned cmd, void* arg, const void* in, std::size_t in_size);
  void poll(Reply r, fuse_ino_t ino, const fuse_file_info& fi, fuse_pollhandle* ph);
  void release(Reply r, fuse_ino_t ino, const fuse_file_info& fi);

 private:
  Group* group_of(fuse_ino_t ino) const {
    return ino > master_ino ? ctx_.registry.find(static_cast<unsigned>(ino - master_ino)) : nullptr;
  }
  std::optional<struct stat> stat_of(fuse_ino_t ino) const;
  void install(Reply r, unsigned cmd, void* arg, const void* in, std::size_t in_size);
  bool clear_stale_mount(std::string& error);

  TransportContext ctx_;
  // A request made by the remote writer's helper is its own fault on one of
  // our files (the caller pointed the install at a mapping of a group
  // file): serving it would consume a message, and a helper that waited
  // for us would wait for itself.  It gets EIO at once.
  bool from_helper(const Reply& r) noexcept { return writer_.is_helper(r.context()->pid); }

  MasterRequests master_;
  RemoteWriter writer_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  std::unique_ptr<SessionReaders> readers_;
};

// --- the operations table: small forwarding functions ---------------------

void op_init(void*, fuse_conn_info* conn) {
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->max_write = std::min(conn->max_write, session_max_write);
}
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FuseTransport::of(req).lookup(Reply(req), parent, name);
}
void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) { Reply(req).none(); }
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  FuseTransport::of(req).getattr(Reply(req), ino);
}
void op_setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_refuse_name(fuse_req_t req, fuse_ino_t, const char*) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  Reply(req).error(fs_errno::read_only_tree);
}
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FuseTransport::of(req).open(Reply(req), ino, fi);
}
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t, fuse_file_info*) {
  FuseTransport::of(req).read(Reply(req), ino, size);
}
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t, fuse_file_info*) {
  FuseTransport::of(req).write(Reply(req), ino, buf, size);
}
void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { Reply(req).ok(); }
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FuseTransport::of(req).release(Reply(req), ino, *fi);
}
void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  FuseTransport::of(req).fsync(Reply(req), ino);
}
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) {
    Reply(req).error(fs_errno::not_directory);
    return;
  }
  Reply(req).open(*fi);
}
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  FuseTransport::of(req).readdir(Reply(req), ino, size, off);
}
void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { Reply(req).ok(); }
void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned cmd, void* arg, fuse_file_info*, unsigned,
              const void* in, size_t in_size, size_t) {
  FuseTransport::of(req).ioctl(Reply(req), ino, cmd, arg, in, in_size);
}
void op_poll(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, fuse_pollhandle* ph) {
  FuseTransport::of(req).poll(Reply(req), ino, *fi, ph);
}

const fuse_lowlevel_ops fuse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_refuse_name,
    .rmdir = op_refuse_name,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .create = op_create,
    .ioctl = op_ioctl,
    .poll = op_poll,
};

// --- the handlers ---------------------------------------------------------

std::optional<struct stat> FuseTransport::stat_of(fuse_ino_t ino) const {
  struct stat st{};
  st.st_ino = ino;
  st.st_nlink = 1;
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
  } else if (ino == master_ino) {
    st.st_mode = S_IFREG | 0444;
  } else if (group_of(ino) != nullptr) {
    st.st_mode = S_IFREG | 0666;
  } else {
    return std::nullopt;
  }
  return st;
}

void FuseTransport::lookup(Reply r, fuse_ino_t parent, const char* name) {
  std::string_view n(name);
  fuse_ino_t ino = 0;
  if (parent == FUSE_ROOT_ID && n == master_name) {
    ino = master_ino;
  } else if (parent == FUSE_ROOT_ID && n.starts_with(master_name) && n.size() > master_name.size() &&
             n[master_name.size()] != '0') {
    unsigned d = 0;
    auto digits = n.substr(master_name.size());
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), d);
    if (ec == std::errc() && end == digits.data() + digits.size() && ctx_.registry.find(d))
      ino = master_ino + d;
  }
  auto st = ino ? stat_of(ino) : std::nullopt;
  if (!st) {
    r.error(fs_errno::unknown_name);
    return;
  }
  fuse_entry_param e{};
  e.ino = ino;
  e.attr = *st;
  e.attr_timeout = forever;
  e.entry_timeout = forever;
  r.entry(e);
}

void FuseTransport::getattr(Reply r, fuse_ino_t ino) {
  auto st = stat_of(ino);
  if (!st)
    r.error(fs_errno::unknown_name);
  else
    r.attr(*st, forever);
}

void FuseTransport::readdir(Reply r, fuse_ino_t ino, std::size_t size, off_t off) {
  if (ino != FUSE_ROOT_ID) {
    r.error(fs_errno::not_directory);
    return;
  }
  // Entry k of the listing: ".", "..", "synchmess", then installed groups.
  std::vector<char> buf(size);
  std::size_t used = 0;
  unsigned max = ctx_.registry.max_groups();
  for (off_t k = off; k < static_cast<off_t>(max) + 3; ++k) {
    std::string name;
    fuse_ino_t e_ino;
    if (k == 0) { name = "."; e_ino = FUSE_ROOT_ID; }
    else if (k == 1) { name = ".."; e_ino = FUSE_ROOT_ID; }
    else if (k == 2) { name = "synchmess"; e_ino = master_ino; }
    else {
      unsigned d = static_cast<unsigned>(k - 2);
      if (!ctx_.registry.find(d)) continue;
      name = "synchmess" + std::to_string(d);
      e_ino = master_ino + d;
    }
    struct stat st{};
    st.st_ino = e_ino;
    st.st_mode = k < 2 ? S_IFDIR : S_IFREG;
    std::size_t len = fuse_add_direntry(r.get(), buf.data() + used, size - used, name.c_str(), &st, k + 1);
    if (len > size - used) break;
    used += len;
  }
  r.data(std::as_bytes(std::span(buf.data(), used)));
}

void FuseTransport::open(Reply r, fuse_ino_t ino, fuse_file_info* fi) {
  fi->noflush = 1;
  if (ino == master_ino) {
    master_.open(std::move(r), *fi);
    return;
  }
  Group* g = group_of(ino);
  if (g == nullptr) {
    if (ino == FUSE_ROOT_ID)
      r.error(fs_errno::is_directory);
    else
      r.fail(Errc::no_such_group);
    return;
  }
  ctx_.groups.open(*g, std::move(r), *fi);
}

void FuseTransport::release(Reply r, fuse_ino_t ino, const fuse_file_info& fi) {
  if (Group* g = group_of(ino))
    ctx_.groups.release(*g, std::move(r), fi);
  else
    r.ok();
}

void FuseTransport::read(Reply r, fuse_ino_t ino, std::size_t size) {
  if (from_helper(r))
    r.fail(Errc::own_request);
  else if (Group* g = group_of(ino))
    ctx_.groups.read(*g, std::move(r), size);
  else
    r.fail(ino == master_ino ? Errc::not_permitted : Errc::no_such_group);
}

void FuseTransport::write(Reply r, fuse_ino_t ino, const char* buf, std::size_t size) {
  if (from_helper(r))
    r.fail(Errc::own_request);
  else if (Group* g = group_of(ino))
    ctx_.groups.write(*g, std::move(r), std::as_bytes(std::span(buf, size)));
  else
    r.fail(ino == master_ino ? Errc::not_permitted : Errc::no_such_group);
}

void FuseTransport::fsync(Reply r, fuse_ino_t ino) {
  if (Group* g = group_of(ino))
    ctx_.groups.flush(*g, std::move(r));
  else
    r.fail(ino == master_ino ? Errc::not_permitted : Errc::no_such_group);
}

void FuseTransport::ioctl(Reply r, fuse_ino_t ino, unsigned cmd, void* arg, const void* in,
                          std::size_t in_size) {
  IoctlSpec spec = decode_ioctl(cmd);
  auto in_bytes = std::as_bytes(std::span(static_cast<const char*>(in), in_size));
  if (ino == master_ino) {
    if (spec.op == IoctlOp::install_group)
      install(std::move(r), cmd, arg, in, in_size);
    else
      master_.ioctl(std::move(r), spec, in_bytes);
    return;
  }
  if (Group* g = group_of(ino))
    ctx_.groups.ioctl(*g, std::move(r), spec, in_bytes);
  else
    r.fail(Errc::no_such_group);
}

// Only the number's 8 size bytes travel: the descriptor and the first 4
// bytes of device_path.  The descriptor and the full path go by the remote
// writer's helper process (never a request thread: the write can fault on
// anything the caller mapped there), all or nothing, before the group is
// installed: a caller whose struct cannot take the path gets EFAULT and
// installs nothing.  The reply carries the same 8 bytes the caller's
// struct now holds, because the kernel copies them over it afterwards.
void FuseTransport::install(Reply r, unsigned, void* arg, const void* in, std::size_t in_size) {
  if (in_size < sizeof(unsigned)) {
    r.fail(Errc::bad_address);
    return;
  }
  unsigned d = 0;
  std::memcpy(&d, in, sizeof d);
  if (!ctx_.registry.accepts(d)) {
    r.fail(Errc::bad_descriptor);
    return;
  }
  std::string path = group_path(d);
  std::vector<std::byte> bytes(offsetof(group_t, device_path) + path.size() + 1);
  std::memcpy(bytes.data(), &d, sizeof d);
  std::memcpy(bytes.data() + offsetof(group_t, device_path), path.data(), path.size());
  std::array<std::byte, 8> out{};
  std::size_t out_size = std::min(in_size, out.size());
  std::memcpy(out.data(), bytes.data(), std::min(out_size, bytes.size()));
  auto address = reinterpret_cast<std::uintptr_t>(arg);
  pid_t tid = r.context()->pid;
  uid_t uid = r.context()->uid;
  // A group, once installed, stays (registry.h): then a successful write
  // is the whole install, and the helper answers the caller itself, which
  // spares a wake-up of the daemon on the caller's path, and does not wake
  // the daemon's loop at all (a later install or the writer's deadline
  // releases the request handle, on its thread).  A new group is
  // installed here after the write, so that a failed write installs
  // nothing.
  std::optional<RemoteWriter::DirectReply> direct;
  if (std::uint64_t unique = current_request_unique(); unique != 0 && ctx_.registry.find(d) != nullptr)
    direct = RemoteWriter::DirectReply{unique, out, static_cast<std::uint32_t>(out_size)};
  writer_.write(tid, uid, address, std::move(bytes),
                [this, d, tid, out, out_size, reply = std::move(r)](int err, bool replied) mutable {
                  if (err != 0) {
                    log::limited_warn("install of group {}: cannot write the device path into process {}: {}", d,
                                      tid, std::strerror(err));
                    reply.fail(remote_write_error(err));
                    return;
                  }
                  if (replied) {
                    reply.none();  // answered by the helper: only libfuse's handle is left to free
                    return;
                  }
                  master_.install(std::move(reply), d, [out, out_size](Reply done, std::string) {
                    done.ioctl(0, std::span(out.data(), out_size));
                  });
                },
                direct);
}

void FuseTransport::poll(Reply r, fuse_ino_t ino, const fuse_file_info& fi, fuse_pollhandle* ph) {
  if (Group* g = group_of(ino)) {
    ctx_.groups.poll(*g, std::move(r), fi, ph);
    return;
  }
  if (ph) fuse_pollhandle_destroy(ph);
  r.fail(ino == master_ino ? Errc::not_permitted : Errc::no_such_group);
}

// --- mount and unmount ----------------------------------------------------

bool FuseTransport::clear_stale_mount(std::string& error) {
  bool mounted = false;
  {
    std::ifstream mounts("/proc/self/mounts");
    std::string dev, dir, type;
    while (mounts >> dev >> dir >> type) {
      if (dir == ctx_.dev_dir && type == "fuse.synchmess") mounted = true;
      mounts.ignore(4096, '\n');
    }
  }
  if (mounted) {
    // statfs always reaches the daemon (stat may be answered from the
    // attribute cache): a live one answers, a dead one gives ENOTCONN.
    struct statfs sfs{};
    if (::statfs(ctx_.dev_dir.c_str(), &sfs) == 0) {
      error = ctx_.dev_dir + " is already served by another synchmessd";
      return false;
    }
    log::info("{}: removing the mount left by a daemon that died ({})", ctx_.dev_dir, std::strerror(errno));
    if (::umount2(ctx_.dev_dir.c_str(), MNT_DETACH) != 0) {
      error = "cannot remove the stale mount at " + ctx_.dev_dir + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }
  struct stat st{};
  if (::stat(ctx_.dev_dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      error = ctx_.dev_dir + " is not a directory";
      return false;
    }
    return true;
  }
  if (errno == ENOENT) {
    std::string path;
    for (std::size_t pos = 1; pos != std::string::npos;) {
      pos = ctx_.dev_dir.find('/', pos + 1);
      path = ctx_.dev_dir.substr(0, pos);
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        error = "cannot create " + path + ": " + std::strerror(errno);
        return false;
      }
    }
    return true;
  }
  error = ctx_.dev_dir + ": " + std::strerror(errno);
  return false;
}

Result<void> FuseTransport::start(std::string& error) {
  if (!clear_stale_mount(error)) return fail(Errc::not_permitted);
  const char* argv[] = {"synchmessd", "-o",
                        "allow_other,default_permissions,fsname=synchmess,subtype=synchmess"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  session_ = fuse_session_new(&args, &fuse_ops, sizeof fuse_ops, this);
  fuse_opt_free_args(&args);
  if (session_ == nullptr) {
    error = "fuse_session_new failed";
    return fail(Errc::out_of_memory);
  }
  if (fuse_session_mount(session_, ctx_.dev_dir.c_str()) != 0) {
    error = "cannot mount a FUSE filesystem at " + ctx_.dev_dir + " (is /dev/fuse there, and are we root?)";
    return fail(Errc::not_permitted);
  }
  mounted_ = true;
  writer_.set_reply_fd(fuse_session_fd(session_));  // before any request can be read
  // The request threads read /dev/fuse and answer what they read; only the
  // install's remote write (and its completion) runs on the service's loop.
  readers_ = std::make_unique<SessionReaders>(session_, "fuse " + ctx_.dev_dir, ctx_.request_threads, [this] {
    if (ctx_.lost) ctx_.lost(ctx_.dev_dir + ": the kernel ended the FUSE session (unmounted or aborted)");
  });
  if (!readers_->start()) {
    error = "cannot serve the FUSE session";
    return fail(Errc::not_permitted);
  }
  return {};
}

void FuseTransport::finish_stop() {
  writer_.stop();
  if (readers_) {
    readers_->stop();
    readers_.reset();
  }
  if (session_ != nullptr) {
    if (mounted_) fuse_session_unmount(session_);
    mounted_ = false;
    fuse_session_destroy(session_);
    session_ = nullptr;
  }
}

}  // namespace

std::unique_ptr<Transport> make_fuse_transport(TransportContext ctx) {
  return std::make_unique<FuseTransport>(std::move(ctx));
}

}  // namespace synchmess
