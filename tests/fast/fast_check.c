/* fast_check.c - the fast path's hand-out and shared segment through a
 * real daemon (tests/fast/run starts it):
 *
 *   fast-check handout DEVDIR SOCKET   as root: a ticket of root's refused
 *       to another uid; the reply's pid as the daemon sees it, from a pid
 *       namespace of the client's own too; then as nobody: ticket, exchange, map, a message
 *       written in shared memory read through the device and the reverse,
 *       a device poller woken by FAST_KICK, and bad, replayed, other-group
 *       and expired tokens refused with EACCES.
 *   fast-check enotty DEVDIR           FAST_TICKET fails ENOTTY (--no-fast).
 *   fast-check stats DEVDIR            run under synchmess-fast: 50 writes
 *       and 30 reads through the library (the ring) and 5 + 5 through the
 *       device (system calls) on a fresh group 24: its statistics count
 *       both paths (sent 55, received 35, 20 queued).
 *   fast-check corrupt DEVDIR SOCKET SECONDS   a process scribbles random
 *       bytes over group 21's mapped segment while others write and read
 *       it through the device; group 22 beside it stays exactly-once and in
 *       order; afterwards group 21 works again through the device.
 *
 * Prints "fast-check MODE: ok" and exits 0, or names the failed check on
 * stderr and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring/shm_ring.h"
#include "synchmess_fast.h"
#include "fast_test_group.h"
#include "synchmess_interface.h"
#include "synchmess_stats.h"

static const char* devdir;

#define CHECK(cond, ...)                                             \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "fast-check: %s:%d: ", __FILE__, __LINE__);    \
      fprintf(stderr, __VA_ARGS__);                                  \
      fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));  \
      exit(1);                                                       \
    }                                                                \
  } while (0)

static double now_s(void) { return fast_test_now_s(); }

static int open_group(unsigned d) {
  const char* what = "";
  int fd = fast_test_open_group(devdir, d, &what);
  CHECK(fd >= 0, "group %u: %s", d, what);
  return fd;
}

/* One exchange: the reply's error (0: *memfd is set). */
static int exchange(const char* socket_path, uint64_t token, unsigned group, struct synchmess_fast_reply* out,
                    int* memfd) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  CHECK(s >= 0, "socket");
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
  CHECK(connect(s, (struct sockaddr*)&a, sizeof a) == 0, "connect %s", socket_path);
  struct synchmess_fast_request req = {.token = token, .group = group};
  CHECK(send(s, &req, sizeof req, 0) == (ssize_t)sizeof req, "send the request");
  struct synchmess_fast_reply rep;
  memset(&rep, 0, sizeof rep);
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&rep, sizeof rep};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
  CHECK(n == (ssize_t)sizeof rep, "reply of %zd bytes", n);
  *memfd = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(memfd, CMSG_DATA(c), sizeof(int));
  CHECK((rep.error == 0) == (*memfd >= 0), "an fd exactly when error is 0 (error %d)", rep.error);
  char extra;
  CHECK(recv(s, &extra, 1, 0) == 0, "the daemon closes after one exchange");
  close(s);
  *out = rep;
  return rep.error;
}

static struct synchmess_fast_ticket ticket(int fd) {
  struct synchmess_fast_ticket t;
  memset(&t, 0xff, sizeof t);
  CHECK(ioctl(fd, SYNCHMESS_IOCTL_FAST_TICKET, &t) == 0, "FAST_TICKET");
  return t;
}

struct mapping {
  struct shm_ring ring;
  void* mem;
  uint64_t bytes;
};

static struct mapping map_group(int fd, unsigned group, const char* socket_path) {
  struct synchmess_fast_ticket t = ticket(fd);
  CHECK(t.version == SYNCHMESS_FAST_VERSION && t.group == group, "ticket version %u group %u", t.version, t.group);
  CHECK(strcmp(t.socket_path, socket_path) == 0, "ticket's socket %s", t.socket_path);
  struct synchmess_fast_reply rep;
  int memfd;
  CHECK(exchange(t.socket_path, t.token, group, &rep, &memfd) == 0, "exchange: error %d", rep.error);
  CHECK(rep.segment_bytes == t.segment_bytes && rep.generation == t.generation, "reply matches the ticket");
  int seals = fcntl(memfd, F_GET_SEALS);
  CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
        "sealed (0x%x)", seals);
  struct mapping m;
  m.bytes = rep.segment_bytes;
  m.mem = mmap(NULL, m.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  CHECK(m.mem != MAP_FAILED, "mmap %llu bytes", (unsigned long long)m.bytes);
  close(memfd);
  CHECK(shm_ring_attach(&m.ring, m.mem, m.bytes) == 0, "attach");
  return m;
}

static enum shm_ring_status ring_write(struct mapping* m, const char* s) {
  uint64_t msg, storage;
  shm_ring_limits(&m->ring, &msg, &storage);
  return shm_ring_write(&m->ring, s, strlen(s), msg, storage, (uint32_t)getpid());
}

static void expect_refused(const char* sock, uint64_t token, unsigned group, const char* why) {
  struct synchmess_fast_reply rep;
  int memfd;
  int e = exchange(sock, token, group, &rep, &memfd);
  CHECK(e == EACCES, "%s: error %d, want EACCES", why, e);
}

static int handout(const char* sock) {
  const unsigned group = 11;
  int fd = open_group(group);
  /* A ticket asked by root, presented by another uid. */
  struct synchmess_fast_ticket root_ticket = ticket(fd);
  pid_t child = fork();
  CHECK(child >= 0, "fork");
  if (child == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    struct synchmess_fast_reply rep;
    int memfd;
    _exit(exchange(sock, root_ticket.token, group, &rep, &memfd) == EACCES ? 0 : 1);
  }
  int status;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "another uid's exchange of root's ticket is refused");
  expect_refused(sock, root_ticket.token, group, "a token burnt by a wrong-uid try");
  /* A client in a pid namespace of its own (pid 1 there) is told the pid
   * the daemon sees, its pid here, so that it names nobody in its records
   * (the daemon's sweep could not tell it alive). */
  int pids[2];
  CHECK(pipe(pids) == 0, "pipe");
  child = fork();
  CHECK(child >= 0, "fork");
  if (child == 0) {
    if (unshare(CLONE_NEWPID) != 0) _exit(2);
    pid_t inner = fork();
    if (inner == 0) {
      struct synchmess_fast_ticket t = ticket(fd);
      struct synchmess_fast_reply rep;
      int memfd;
      uint32_t told[2] = {(uint32_t)getpid(), 0};
      if (exchange(sock, t.token, group, &rep, &memfd) != 0) _exit(3);
      told[1] = rep.pid;
      _exit(write(pids[1], told, sizeof told) == (ssize_t)sizeof told ? 0 : 4);
    }
    uint32_t outer = (uint32_t)inner;
    int st = -1;
    _exit(inner > 0 && write(pids[1], &outer, sizeof outer) == (ssize_t)sizeof outer && waitpid(inner, &st, 0) == inner &&
                  WIFEXITED(st)
              ? WEXITSTATUS(st)
              : 5);
  }
  close(pids[1]);
  uint32_t outer = 0, told[2] = {0, 0};
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the exchange from another pid namespace (status %d)", status);
  CHECK(read(pids[0], &outer, sizeof outer) == (ssize_t)sizeof outer && read(pids[0], told, sizeof told) == (ssize_t)sizeof told,
        "the pids");
  close(pids[0]);
  CHECK(told[0] == 1 && told[1] == outer, "the reply names the pid the daemon sees (%u), not the namespace's (%u): %u",
        outer, told[0], told[1]);
  /* The rest as nobody. */
  CHECK(setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0, "become nobody");
  struct mapping m = map_group(fd, group, sock);
  CHECK(shm_ring_delay(&m.ring) == 0, "no delay published");
  /* Shared memory -> device. */
  CHECK(ring_write(&m, "from-shm") == SHM_RING_OK, "write into the ring");
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  CHECK(n == 8 && memcmp(buf, "from-shm", 8) == 0, "device read of the shared-memory write (%zd)", n);
  /* Device -> shared memory. */
  CHECK(write(fd, "from-dev", 8) == 8, "device write");
  size_t len = 0;
  CHECK(shm_ring_read(&m.ring, buf, sizeof buf, &len, (uint32_t)getpid()) == SHM_RING_OK && len == 8 &&
            memcmp(buf, "from-dev", 8) == 0,
        "shared-memory read of the device write");
  CHECK(shm_ring_read(&m.ring, buf, sizeof buf, &len, (uint32_t)getpid()) == SHM_RING_EMPTY, "then empty");
  /* A device poller wakes when a fast writer publishes and kicks. */
  pid_t poller = fork();
  CHECK(poller >= 0, "fork");
  if (poller == 0) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 20000);
    _exit(r == 1 && (p.revents & POLLIN) ? 0 : 1);
  }
  for (double end = now_s() + 20; !shm_ring_pollers(&m.ring) && now_s() < end;) usleep(1000);
  CHECK(shm_ring_pollers(&m.ring), "the daemon sets the pollers flag while a poll waits");
  CHECK(ring_write(&m, "wake") == SHM_RING_OK, "write into the ring");
  CHECK(shm_ring_pollers(&m.ring) && ioctl(fd, SYNCHMESS_IOCTL_FAST_KICK) == 0, "FAST_KICK");
  CHECK(waitpid(poller, &status, 0) == poller && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the poller woke with POLLIN");
  n = read(fd, buf, sizeof buf);
  CHECK(n == 4, "read the wake-up message");
  /* Tokens: bad, replayed, other group, expired. */
  struct synchmess_fast_ticket t = ticket(fd);
  expect_refused(sock, t.token + 1, group, "a token never issued");
  struct synchmess_fast_reply rep;
  int memfd;
  CHECK(exchange(sock, t.token, group, &rep, &memfd) == 0, "a fresh token");
  CHECK(rep.pid == (uint32_t)getpid(), "the reply names this pid (%u, not %u)", rep.pid, (unsigned)getpid());
  close(memfd);
  expect_refused(sock, t.token, group, "a replayed token");
  t = ticket(fd);
  expect_refused(sock, t.token, group + 1, "a token for another group");
  t = ticket(fd);
  sleep(11); /* tokens live 10 s: the expiry itself is under test */
  expect_refused(sock, t.token, group, "an expired token");
  /* A request of the wrong size. */
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  CHECK(connect(s, (struct sockaddr*)&a, sizeof a) == 0, "connect");
  CHECK(send(s, "short", 5, 0) == 5, "send");
  CHECK(recv(s, &rep, sizeof rep, 0) == (ssize_t)sizeof rep && rep.error == EINVAL, "a short request: EINVAL");
  close(s);
  munmap(m.mem, m.bytes);
  close(fd);
  return 0;
}

static int enotty(void) {
  int fd = open_group(12);
  struct synchmess_fast_ticket t;
  CHECK(ioctl(fd, SYNCHMESS_IOCTL_FAST_TICKET, &t) == -1 && errno == ENOTTY, "FAST_TICKET with --no-fast: ENOTTY");
  char path[300];
  snprintf(path, sizeof path, "%s/synchmess", devdir);
  int master = open(path, O_RDONLY);
  CHECK(ioctl(master, SYNCHMESS_IOCTL_FAST_TICKET, &t) == -1 && errno == EPERM, "on the master: EPERM");
  close(master);
  close(fd);
  return 0;
}

/* Group 22 is written and read in order by one writer and one reader
 * process beside the scribbling of group 21; 21 gets device traffic too. */
static int corrupt(const char* sock, int seconds) {
  int victim = open_group(21), other = open_group(22);
  struct mapping m = map_group(victim, 21, sock);
  pid_t kids[4];
  int nkids = 0;
  const int per_writer = 50000;
  /* Scribbler. */
  if ((kids[nkids++] = fork()) == 0) {
    srand((unsigned)getpid());
    unsigned char* p = m.mem;
    for (double end = now_s() + seconds; now_s() < end;) {
      for (int i = 0; i < 16; ++i) {
        uint64_t at = (uint64_t)rand() % (rand() % 3 == 0 ? 4096 : m.bytes - 8);
        uint64_t v = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
        memcpy(p + (at & ~7ull), &v, 8);
      }
      usleep(2000);
    }
    _exit(0);
  }
  /* Device traffic on the victim (results may be anything but a hang). */
  if ((kids[nkids++] = fork()) == 0) {
    char buf[128];
    for (double end = now_s() + seconds; now_s() < end;) {
      (void)!write(victim, "victim-message", 14);
      (void)!read(victim, buf, sizeof buf);
    }
    _exit(0);
  }
  /* Group 22: writer and reader, exactly once, in order. */
  if ((kids[nkids++] = fork()) == 0) {
    char msg[32];
    for (int i = 0; i < per_writer;) {
      int len = snprintf(msg, sizeof msg, "m%d", i);
      if (write(other, msg, (size_t)len) == len)
        ++i;
      else if (errno == EPERM)
        usleep(100); /* full: the reader catches up */
      else
        _exit(3);
    }
    _exit(0);
  }
  int next = 0, failures = 0;
  char buf[64];
  double deadline = now_s() + seconds + 120;
  while (next < per_writer && now_s() < deadline) {
    ssize_t n = read(other, buf, sizeof buf - 1);
    if (n <= 0) continue;
    buf[n] = 0;
    if (atoi(buf + 1) != next || buf[0] != 'm') {
      fprintf(stderr, "fast-check: group 22 read %s, want m%d\n", buf, next);
      failures++;
      break;
    }
    ++next;
  }
  int status;
  for (int i = 0; i < nkids; ++i) {
    CHECK(waitpid(kids[i], &status, 0) == kids[i], "wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d exit %d", i, status);
  }
  CHECK(failures == 0 && next == per_writer, "group 22 exactly once and in order (%d of %d)", next, per_writer);
  /* Group 21 works again: once the scribbling stopped, a message written
   * through the device is read back (the daemon repaired the ring). */
  munmap(m.mem, m.bytes);
  int ok = 0;
  for (double end = now_s() + 20; !ok && now_s() < end;) {
    while (read(victim, buf, sizeof buf) > 0) {
    }
    if (write(victim, "again", 5) == 5) {
      ssize_t n = read(victim, buf, sizeof buf);
      ok = n == 5 && memcmp(buf, "again", 5) == 0;
    }
    if (!ok) usleep(10000);
  }
  CHECK(ok, "group 21 usable again after the corruption");
  return 0;
}

/* Under synchmess-fast (tests/fast/run checks with SYNCHMESS_FAST_LOG that
 * the group was put on the shared ring): fast-path writes and reads appear
 * in the group's statistics, beside the device's. */
static int stats(void) {
  const char* what = "";
  int fd = fast_test_open_group(devdir, 24, &what);
  CHECK(fd >= 0, "group 24: %s", what);
  char msg[64], buf[128];
  for (int i = 0; i < 50; i++) {
    snprintf(msg, sizeof msg, "fast %d", i);
    CHECK(write(fd, msg, strlen(msg)) == (ssize_t)strlen(msg), "fast write %d", i);
  }
  for (int i = 0; i < 5; i++)
    CHECK(syscall(SYS_write, fd, "device", 6) == 6, "device write %d", i);
  for (int i = 0; i < 30; i++) {
    snprintf(msg, sizeof msg, "fast %d", i);
    ssize_t n = read(fd, buf, sizeof buf);
    CHECK(n == (ssize_t)strlen(msg) && memcmp(buf, msg, (size_t)n) == 0, "fast read %d", i);
  }
  for (int i = 30; i < 35; i++) {
    snprintf(msg, sizeof msg, "fast %d", i);
    long n = syscall(SYS_read, fd, buf, sizeof buf);
    CHECK(n == (long)strlen(msg) && memcmp(buf, msg, (size_t)n) == 0, "device read %d", i);
  }
  char path[300];
  snprintf(path, sizeof path, "%s/synchmess", devdir);
  int master = open(path, O_RDONLY);
  CHECK(master >= 0, "open the master");
  struct synchmess_group_stats gs;
  memset(&gs, 0, sizeof gs);
  gs.descriptor = 24;
  CHECK(ioctl(master, IOCTL_GET_GROUP_STATS, &gs) == 0, "IOCTL_GET_GROUP_STATS");
  close(master);
  CHECK(gs.sent == 55 && gs.received == 35 && gs.queued_messages == 20,
        "group 24: sent %llu (55), received %llu (35), queued %llu (20)", gs.sent, gs.received,
        gs.queued_messages);
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fast-check handout|enotty|stats|corrupt DEVDIR [SOCKET [SECONDS]]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  devdir = argv[2];
  int r;
  if (strcmp(argv[1], "handout") == 0 && argc == 4)
    r = handout(argv[3]);
  else if (strcmp(argv[1], "enotty") == 0)
    r = enotty();
  else if (strcmp(argv[1], "stats") == 0)
    r = stats();
  else if (strcmp(argv[1], "corrupt") == 0 && argc == 5)
    r = corrupt(argv[3], atoi(argv[4]));
  else
    return 2;
  if (r == 0) printf("fast-check %s: ok\n", argv[1]);
  return r;
}
