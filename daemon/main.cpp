// synchmessd - the SynchMess device service.  See options.h and service.h.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "requests/log.h"
#include "daemon/options.h"
#include "fuse-fs/remote_writer.h"
#include "daemon/service.h"

namespace {

// Detaches before any thread starts: the parent waits on a pipe until the
// child reports the master device ready (exit 0) or fails (exit 1).
int detach(int& ready_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid > 0) {
    ::close(p[1]);
    char c = 0;
    ssize_t n = ::read(p[0], &c, 1);
    ::_exit(n == 1 ? 0 : 1);
  }
  ::close(p[0]);
  ::setsid();
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO) ::close(null);
  }
  ready_fd = p[1];
  return 0;
}

// Signals whose default action would kill the service by accident.  SIGPIPE:
// a log line to a stderr pipe whose reader is gone must fail, not kill us
// (that would leave a stale FUSE mount).  SIGUSR2, SIGALRM: a stray kill must
// not stop the service.  SIGHUP and SIGUSR1 too until the service takes them
// over (SIGUSR1 logs a status line then).  Before any thread starts, so all
// inherit it.
void ignore_stray_signals() {
  for (int sig : {SIGPIPE, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM}) ::signal(sig, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  // The FUSE transport's remote-write helper is this binary, exec'ed fresh.
  if (argc >= 2 && std::string_view(argv[1]) == synchmess::remote_write_helper_flag)
    return synchmess::run_remote_write_helper(argc, argv);
  ignore_stray_signals();
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = synchmess::parse_options(args);
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "synchmessd: %s\n", parsed.error.c_str());
    return 2;
  }
  if (parsed.options.help) {
    std::fputs(synchmess::usage().c_str(), stdout);
    return 0;
  }
  int ready_fd = -1;
  if (!parsed.options.foreground && detach(ready_fd) != 0) {
    std::perror("synchmessd: cannot detach");
    return 1;
  }
  synchmess::Service service(parsed.options);
  return service.run([&] {
    if (ready_fd >= 0) {
      ssize_t ignored = ::write(ready_fd, "r", 1);
      (void)ignored;
      ::close(ready_fd);
      ready_fd = -1;
    }
  });
}
