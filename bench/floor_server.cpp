// floor_server.cpp - see floor_server.h.
#include "floor_server.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

namespace synchmess::bench {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;

bool is_fuse_mount(const std::string& dir) {
  struct statfs s;
  return statfs(dir.c_str(), &s) == 0 && long(s.f_type) == kFuseSuperMagic;
}

}  // namespace

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, std::size_t(n));
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string FloorServer::start(const std::string& binary, unsigned threads) {
  if (access(binary.c_str(), X_OK) != 0)
    return "echo floor binary " + binary + ": " + std::strerror(errno);
  char tmpl[] = "/tmp/synchmess-floor-XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    return std::string("mkdtemp: ") + std::strerror(errno);
  dir_ = tmpl;
  std::string thr = std::to_string(threads);
  pid_ = fork();
  if (pid_ < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid_ == 0) {
    std::vector<char*> argv = {const_cast<char*>(binary.c_str()),
                               const_cast<char*>("--dir"), dir_.data(),
                               const_cast<char*>("--threads"), thr.data(),
                               nullptr};
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  for (int i = 0; i < 1000; ++i) {  // 10 s
    if (is_fuse_mount(dir_) && access(master().c_str(), R_OK) == 0) return "";
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return "echo floor exited before mounting (status " +
             std::to_string(status) + ")";
    }
    usleep(10'000);
  }
  return "echo floor did not mount " + dir_ + " within 10 s";
}

void FloorServer::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status;
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {  // 5 s
      gone = waitpid(pid_, &status, WNOHANG) == pid_;
      if (!gone) usleep(10'000);
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    if (is_fuse_mount(dir_)) umount2(dir_.c_str(), MNT_DETACH);
    rmdir(dir_.c_str());
    dir_.clear();
  }
}

}  // namespace synchmess::bench
