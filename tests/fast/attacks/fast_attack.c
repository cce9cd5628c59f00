/* fast_attack.c - a hostile local user against the fast path (issue 13,
 * point 4).  Each mode is one attack through a live daemon (FUSE or CUSE);
 * run them with tests/fast/attacks/run, which starts the daemon.  Each mode
 * prints what it measured and "fast-attack MODE: ok" (exit 0) when the
 * daemon held, or "fast-attack MODE: FAIL ..." (exit 1).
 *
 *   busy-wedge DEVDIR SOCKET   keeps group 31's newest reservation without
 *       its word0 (a forged tail, refreshed whenever the sweep declares it
 *       dead) while 4 processes use group 31 through the device; group 32's
 *       device write+read latency must stay below 200 ms.
 *   stuck-head DEVDIR SOCKET   a forged RESERVED record of a live (stopped)
 *       process at group 33's head: a message written after it through the
 *       device must be readable within 1 s.
 *   stored-huge DEVDIR SOCKET  group 34's storage counter scribbled to
 *       2^63 on an empty ring: a device write must succeed within 1 s.
 *   conn-flood DEVDIR SOCKET   one uid keeps 64+ connections to the socket
 *       open that send nothing: another uid's exchange must still succeed.
 *   ticket-flood DEVDIR        one uid asks 5000 tickets: another uid's
 *       FAST_TICKET must still succeed.
 *   socket-junk DEVDIR SOCKET  300 connections sending partial, oversized
 *       and huge requests, fds the other way, or EOF: the daemon's fds stay
 *       put (the runner prints them) and an exchange then succeeds.
 *   pollers-cleared DEVDIR SOCKET  a device poller waits on group 39; a
 *       hostile clears the pollers flag; a fast writer following the
 *       contract publishes: the poller must wake within 2 s.
 *   growth DEVDIR SOCKET       (root) group 40 filled to 1 MiB by a fast
 *       writer following the contract; SET_PARAMS raises max_storage_size
 *       to 4 MiB; writes go on up to exactly the new limit, FIFO holds.
 *   retire-forge DEVDIR SOCKET a client marks group 41's tail retired
 *       (as only the daemon should) with messages queued: the group must
 *       take and give a message through the device within 1 s.
 *   touch-all DEVDIR SOCKET    one uid maps groups 1..64 and writes every
 *       byte of their data areas: each group must work again within 5 s
 *       (the runner prints the daemon's RSS and shared memory after it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring/shm_ring.h"
#include "synchmess_fast.h"
#include "../fast_test_group.h"
#include "synchmess_interface.h"

static const char* devdir;
static const char* mode;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "fast-attack %s: %s:%d: ", mode, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));        \
      exit(2);                                                             \
    }                                                                      \
  } while (0)

static double now_s(void) { return fast_test_now_s(); }

static void become(uid_t uid) {
  CHECK(setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) == 0, "become uid %u", (unsigned)uid);
}

static int open_group(unsigned d) {
  const char* what = "";
  int fd = fast_test_open_group(devdir, d, &what);
  CHECK(fd >= 0, "group %u: %s", d, what);
  return fd;
}

static int connect_to(const char* sock) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  CHECK(s >= 0, "socket");
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
    close(s);
    return -1;
  }
  return s;
}

/* One exchange: the reply's error, or -1 if the daemon closed without one. */
static int exchange(const char* sock, uint64_t token, unsigned group, struct synchmess_fast_reply* out, int* memfd) {
  *memfd = -1;
  int s = connect_to(sock);
  if (s < 0) return -1;
  struct synchmess_fast_request req = {.token = token, .group = group};
  if (send(s, &req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req) {
    close(s);
    return -1;
  }
  struct synchmess_fast_reply rep;
  memset(&rep, 0, sizeof rep);
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&rep, sizeof rep};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
  close(s);
  if (n != (ssize_t)sizeof rep) return -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(memfd, CMSG_DATA(c), sizeof(int));
  *out = rep;
  return rep.error;
}

struct mapping {
  struct shm_ring ring;
  unsigned char* mem;
  uint64_t bytes;
};

static struct mapping map_group(int fd, unsigned group, const char* sock) {
  struct synchmess_fast_ticket t;
  int r;
  /* EAGAIN: the token table is full (ticket-flood); tokens live 10 s. */
  for (double end = now_s() + 15; (r = ioctl(fd, SYNCHMESS_IOCTL_FAST_TICKET, &t)) != 0 && errno == EAGAIN &&
                                  now_s() < end;)
    usleep(10000);
  CHECK(r == 0, "FAST_TICKET on group %u", group);
  struct synchmess_fast_reply rep;
  int memfd;
  int e = exchange(sock, t.token, group, &rep, &memfd);
  CHECK(e == 0, "exchange: %d", e);
  struct mapping m;
  m.bytes = rep.segment_bytes;
  m.mem = mmap(NULL, m.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  CHECK(m.mem != MAP_FAILED, "mmap");
  close(memfd);
  CHECK(shm_ring_attach(&m.ring, m.mem, m.bytes) == 0, "attach");
  return m;
}

/* The header's words (ring/shm_ring.c struct seg_header; docs/abi.md). */
#define H_TAIL 64
#define H_HEAD 128
#define H_FREE 192
#define H_STORED 256
static uint64_t* hword(struct mapping* m, unsigned off) { return (uint64_t*)(m->mem + off); }
static uint64_t* dword(struct mapping* m, uint64_t pos) {
  return (uint64_t*)(m->mem + SHM_RING_HEADER_BYTES) + pos % m->ring.cap_units;
}
#define SIZE_BITS 14
#define TAG_SHIFT 18
#define TAG_MASK ((1ull << 46) - 1)
static uint64_t mk(unsigned state, uint64_t size, uint64_t pos) {
  return (uint64_t)state | (size << 4) | ((pos & TAG_MASK) << TAG_SHIFT);
}

/* Reserves `size` units at the tail without writing word0 (a writer stopped
 * between its two steps).  Returns the position, or -1 if the tail moved. */
static int64_t forge_reservation(struct mapping* m, uint64_t size) {
  uint64_t t = __atomic_load_n(hword(m, H_TAIL), __ATOMIC_SEQ_CST);
  uint64_t pos = t >> SIZE_BITS;
  if (pos % m->ring.cap_units + size > m->ring.cap_units) return -1;
  uint64_t nt = ((pos + size) << SIZE_BITS) | size;
  if (!__atomic_compare_exchange_n(hword(m, H_TAIL), &t, nt, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return -1;
  return (int64_t)pos;
}

static void drain(int fd) {
  char buf[70000];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

/* ---- busy-wedge ---- */
static void on_alarm(int sig) { (void)sig; }

static int busy_wedge(const char* sock) {
  int victim = open_group(31), other = open_group(32);
  drain(victim);
  drain(other);
  pid_t kids[8];
  int nkids = 0;
  volatile int* stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  stop[0] = stop[1] = 0; /* [0]: the victims, [1]: the hostile */
  /* The hostile mapper: keeps a reservation without word0 at the tail. */
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    struct mapping m = map_group(victim, 31, sock);
    while (!stop[1]) {
      uint64_t t = __atomic_load_n(hword(&m, H_TAIL), __ATOMIC_SEQ_CST);
      uint64_t last = t & ((1ull << SIZE_BITS) - 1), pos = t >> SIZE_BITS;
      int stuck = last != 0 && (*dword(&m, pos - last) >> TAG_SHIFT) != ((pos - last) & TAG_MASK);
      if (!stuck) (void)forge_reservation(&m, 3);
      usleep(1000);
    }
    _exit(0);
  }
  usleep(300000);
  /* Victims: device traffic on group 31 (any result but a hang). */
  for (int i = 0; i < 4; ++i)
    if ((kids[nkids++] = fork()) == 0) {
      become(12346);
      char buf[64];
      while (!stop[0]) {
        (void)!write(victim, "v", 1);
        (void)!read(victim, buf, sizeof buf);
      }
      _exit(0);
    }
  usleep(300000);
  /* Measure group 32 and one group-31 device write. */
  double worst = 0, sum = 0;
  int n = 0, lost = 0;
  for (double end = now_s() + 5; now_s() < end; ++n) {
    double t0 = now_s();
    char buf[64];
    int ok = write(other, "x", 1) == 1 && read(other, buf, sizeof buf) == 1;
    double d = now_s() - t0;
    if (!ok) lost++;
    sum += d;
    if (d > worst) worst = d;
  }
  /* The victims stop first: on FUSE the kernel serializes the writes to one
   * device file (its inode lock), so the probe would queue behind their
   * parked writes, each waiting for a repair of its own. */
  stop[0] = 1;
  for (int i = 0; i < nkids; ++i) waitpid(kids[i], NULL, 0);
  /* A group-31 device write interrupted by a signal 200 ms in (while it is
   * parked behind the forged reservation) fails EINTR at once, not at the
   * repair up to 5.3 s later; it may succeed instead if the sweep repaired
   * the ring within those 200 ms. */
  struct sigaction alarm_action;
  memset(&alarm_action, 0, sizeof alarm_action);
  alarm_action.sa_handler = on_alarm; /* no SA_RESTART */
  sigemptyset(&alarm_action.sa_mask);
  sigaction(SIGALRM, &alarm_action, NULL);
  struct itimerval in_200ms = {{0, 0}, {0, 200000}};
  double ts = now_s();
  setitimer(ITIMER_REAL, &in_200ms, NULL);
  errno = 0;
  ssize_t ws = write(victim, "signalled", 9);
  int serr = errno;
  double signalled = now_s() - ts;
  double t0 = now_s();
  errno = 0;
  ssize_t w = write(victim, "probe", 5);
  int werr = errno;
  double victim_write = now_s() - t0;
  stop[1] = 1;
  waitpid(hostile, NULL, 0);
  printf("busy-wedge: group 32 write+read: %d pairs, mean %.2f ms, worst %.1f ms, %d failed; "
         "one group-31 device write took %.1f ms (returned %zd, errno %d %s)\n",
         n, sum / n * 1e3, worst * 1e3, lost, victim_write * 1e3, w, werr, w < 0 ? strerror(werr) : "");
  printf("busy-wedge: a group-31 device write signalled after 200 ms returned %zd (errno %d %s) after %.1f ms\n", ws,
         serr, ws < 0 ? strerror(serr) : "", signalled * 1e3);
  if (worst > 0.2 || lost) {
    printf("fast-attack busy-wedge: FAIL (another group's operations are stalled by a wedged group)\n");
    return 1;
  }
  if (!((ws == -1 && serr == EINTR) || ws == 9) || signalled > 1.0) {
    printf("fast-attack busy-wedge: FAIL (a parked device write ignored its caller's signal)\n");
    return 1;
  }
  /* The group-31 write is parked by the daemon (docs/abi.md "Sweep and
   * repair"), not failed, and written as soon as the sweep gives the forged
   * reservation up (its word1 names nobody: the live bound, 5.3 s), before
   * the hostile can forge again (it looks every millisecond; the daemon
   * retries on the sweep's thread right after the repair).  The bound:
   * 5.3 s plus 1 s for the request threads busy with the victims. */
  if (w != 5 || victim_write > 5.3 + 1.0) {
    printf("fast-attack busy-wedge: FAIL (a device write behind a stuck reservation did not succeed "
           "within the sweep's bound)\n");
    return 1;
  }
  return 0;
}

/* ---- stuck-head ---- */
static int stuck_head(const char* sock) {
  int g = open_group(33);
  drain(g);
  int pipefd[2];
  CHECK(pipe(pipefd) == 0, "pipe");
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    struct mapping m = map_group(g, 33, sock);
    int64_t pos;
    while ((pos = forge_reservation(&m, 3)) < 0) usleep(100);
    __atomic_store_n(dword(&m, pos) + 1, 1ull | ((uint64_t)getpid() << 32), __ATOMIC_SEQ_CST);
    __atomic_store_n(dword(&m, pos), mk(1 /* RESERVED */, 3, pos), __ATOMIC_SEQ_CST);
    (void)!write(pipefd[1], "r", 1);
    raise(SIGSTOP); /* a writer stopped in the middle of its copy */
    _exit(0);
  }
  char c;
  CHECK(read(pipefd[0], &c, 1) == 1, "hostile ready");
  double t0 = now_s();
  CHECK(write(g, "after", 5) == 5, "device write behind the stuck record");
  char buf[64];
  ssize_t n = 0;
  double end = t0 + 15;
  while (now_s() < end && (n = read(g, buf, sizeof buf)) <= 0) usleep(1000);
  double took = now_s() - t0;
  kill(hostile, SIGKILL);
  waitpid(hostile, NULL, 0);
  printf("stuck-head: the message behind a stopped writer's record was readable after %.0f ms (read %zd)\n",
         took * 1e3, n);
  /* docs/abi.md "Sweep and repair": 5.3 s for a live (stopped) process. */
  if (n != 5 || took > 5.3 + 0.5) {
    printf("fast-attack stuck-head: FAIL (group not usable by others within the 5.3 s bound)\n");
    return 1;
  }
  return 0;
}

/* ---- stored-huge ---- */
static int stored_huge(const char* sock) {
  int g = open_group(34);
  drain(g);
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    struct mapping m = map_group(g, 34, sock);
    __atomic_store_n(hword(&m, H_STORED), 1ull << 63, __ATOMIC_SEQ_CST);
    _exit(0);
  }
  waitpid(hostile, NULL, 0);
  double t0 = now_s();
  int ok = 0;
  while (!ok && now_s() < t0 + 10) {
    ok = write(g, "x", 1) == 1;
    if (!ok) usleep(1000);
  }
  double took = now_s() - t0;
  printf("stored-huge: a device write succeeded again after %.0f ms (%s)\n", took * 1e3, ok ? "ok" : "never");
  if (!ok || took > 1.0) {
    printf("fast-attack stored-huge: FAIL\n");
    return 1;
  }
  return 0;
}

/* ---- conn-flood ---- */
static int conn_flood(const char* sock) {
  int g = open_group(35);
  volatile int* stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *stop = 0;
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    int held[200];
    int nheld = 0;
    while (!*stop) {
      /* Keep 200 connections that send nothing; re-open those closed. */
      for (int i = 0; i < nheld; ++i) {
        char b;
        if (recv(held[i], &b, 1, MSG_DONTWAIT) == 0) {
          close(held[i]);
          held[i] = held[--nheld];
          --i;
        }
      }
      while (nheld < 200) {
        int s = connect_to(sock);
        if (s < 0) break;
        held[nheld++] = s;
      }
      usleep(1000);
    }
    _exit(0);
  }
  usleep(500000);
  int tries = 20, refused = 0;
  for (int i = 0; i < tries; ++i) {
    struct synchmess_fast_ticket t;
    CHECK(ioctl(g, SYNCHMESS_IOCTL_FAST_TICKET, &t) == 0, "FAST_TICKET");
    struct synchmess_fast_reply rep;
    int memfd;
    int e = exchange(sock, t.token, 35, &rep, &memfd);
    if (e != 0) refused++;
    if (memfd >= 0) close(memfd);
    usleep(50000);
  }
  *stop = 1;
  waitpid(hostile, NULL, 0);
  printf("conn-flood: with one uid holding idle connections, %d of %d exchanges of another uid failed\n",
         refused, tries);
  if (refused) {
    printf("fast-attack conn-flood: FAIL (one user denies the fast path to every user)\n");
    return 1;
  }
  return 0;
}

/* ---- ticket-flood ---- */
static int ticket_flood(void) {
  int g = open_group(36);
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    int issued = 0, again = 0;
    for (int i = 0; i < 5000; ++i) {
      struct synchmess_fast_ticket t;
      if (ioctl(g, SYNCHMESS_IOCTL_FAST_TICKET, &t) == 0)
        issued++;
      else if (errno == EAGAIN)
        again++;
    }
    printf("ticket-flood: uid 12345 got %d tickets, %d EAGAIN\n", issued, again);
    _exit(0);
  }
  waitpid(hostile, NULL, 0);
  struct synchmess_fast_ticket t;
  int r = ioctl(g, SYNCHMESS_IOCTL_FAST_TICKET, &t);
  int e = errno;
  printf("ticket-flood: then another uid's FAST_TICKET: %s\n", r == 0 ? "ok" : strerror(e));
  if (r != 0) {
    printf("fast-attack ticket-flood: FAIL (one user exhausts the token table for every user)\n");
    return 1;
  }
  return 0;
}

/* ---- touch-all ---- */
static int touch_all(const char* sock) {
  enum { groups = 64 };
  int fds[groups + 1];
  /* Drained first: after a growth (mode growth), FAST_TICKET answers
   * EAGAIN while a group's retired segment still holds messages. */
  for (unsigned d = 1; d <= groups; ++d) drain(fds[d] = open_group(d));
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    for (unsigned d = 1; d <= groups; ++d) {
      struct mapping m = map_group(fds[d], d, sock);
      memset(m.mem + SHM_RING_HEADER_BYTES, 0x5a, m.bytes - SHM_RING_HEADER_BYTES);
      munmap(m.mem, m.bytes);
    }
    _exit(0);
  }
  int status;
  waitpid(hostile, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "hostile mapper");
  int bad = 0;
  for (unsigned d = 1; d <= groups; ++d) {
    int ok = 0;
    char buf[64];
    for (double end = now_s() + 5; !ok && now_s() < end;) {
      drain(fds[d]);
      ok = write(fds[d], "ok", 2) == 2 && read(fds[d], buf, sizeof buf) == 2;
      if (!ok) usleep(10000);
    }
    if (!ok) bad++;
  }
  printf("touch-all: every page of %d groups' segments written by uid 12345; %d groups unusable after 5 s\n", groups,
         bad);
  return bad ? 1 : 0;
}

/* ---- socket-junk ---- */
static int socket_junk(const char* sock) {
  int g = open_group(38);
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    static char big[200000];
    for (int i = 0; i < 300; ++i) {
      int s = connect_to(sock);
      if (s < 0) continue;
      switch (i % 5) {
        case 0: (void)!send(s, big, 8, MSG_NOSIGNAL); break;             /* partial */
        case 1: (void)!send(s, big, 17, MSG_NOSIGNAL); break;            /* one too many */
        case 2: (void)!send(s, big, sizeof big, MSG_NOSIGNAL); break;    /* huge */
        case 3: {                                                        /* fds the other way */
          int fds[3] = {0, 1, 2};
          char control[CMSG_SPACE(sizeof fds)];
          struct synchmess_fast_request req = {.token = 1, .group = 38};
          struct iovec iov = {&req, sizeof req};
          struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                               .msg_controllen = sizeof control};
          struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
          c->cmsg_level = SOL_SOCKET;
          c->cmsg_type = SCM_RIGHTS;
          c->cmsg_len = CMSG_LEN(sizeof fds);
          memcpy(CMSG_DATA(c), fds, sizeof fds);
          (void)!sendmsg(s, &msg, MSG_NOSIGNAL);
          break;
        }
        case 4: shutdown(s, SHUT_WR); break;                             /* nothing, then EOF */
      }
      close(s);
    }
    _exit(0);
  }
  waitpid(hostile, NULL, 0);
  struct synchmess_fast_ticket t;
  CHECK(ioctl(g, SYNCHMESS_IOCTL_FAST_TICKET, &t) == 0, "FAST_TICKET");
  struct synchmess_fast_reply rep;
  int memfd = -1, e = -1;
  for (double end = now_s() + 3; e != 0 && now_s() < end;) {
    e = exchange(sock, t.token, 38, &rep, &memfd);
    if (e != 0) usleep(100000);
  }
  printf("socket-junk: 300 junk connections (partial, 17-byte, 200 kB, fds passed in, EOF); then an exchange: %d\n",
         e);
  return e == 0 ? 0 : 1;
}

/* ---- pollers-cleared ---- */
static int pollers_cleared(const char* sock) {
  int g = open_group(39);
  drain(g);
  struct mapping m = map_group(g, 39, sock);
  pid_t poller = fork();
  if (poller == 0) {
    struct pollfd p = {.fd = g, .events = POLLIN};
    double t0 = now_s();
    int r = poll(&p, 1, 5000);
    printf("pollers-cleared: the device poller returned %d after %.0f ms\n", r, (now_s() - t0) * 1e3);
    _exit(r == 1 && now_s() - t0 < 2.0 ? 0 : 1);
  }
  for (double end = now_s() + 5; !shm_ring_pollers(&m.ring) && now_s() < end;) usleep(1000);
  CHECK(shm_ring_pollers(&m.ring), "pollers flag set");
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    struct mapping h = map_group(g, 39, sock);
    shm_ring_set_pollers(&h.ring, 0);
    _exit(0);
  }
  waitpid(hostile, NULL, 0);
  usleep(300000); /* three sweeps */
  uint64_t mm, ms;
  shm_ring_limits(&m.ring, &mm, &ms);
  /* A well-behaved fast writer (the contract's rule 4). */
  CHECK(shm_ring_write(&m.ring, "w", 1, mm, ms, (uint32_t)getpid()) == SHM_RING_OK, "fast write");
  int kicked = shm_ring_pollers(&m.ring);
  if (kicked) ioctl(g, SYNCHMESS_IOCTL_FAST_KICK);
  int status;
  waitpid(poller, &status, 0);
  printf("pollers-cleared: flag %s after the scribble; poller %s\n", kicked ? "restored" : "still clear",
         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "woke" : "missed the wake-up");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* ---- growth ---- */
static int set_storage(unsigned long long bytes) {
  char path[300];
  snprintf(path, sizeof path, "%s/synchmess", devdir);
  int master = open(path, O_RDONLY);
  CHECK(master >= 0, "open master");
  struct synchmess_params p = {0, bytes};
  int r = ioctl(master, IOCTL_SET_PARAMS, &p);
  close(master);
  return r;
}

/* One write following the contract: 1 = written (ring or device), 0 = EPERM. */
static int contract_write(int fd, unsigned group, const char* sock, struct mapping* m, const char* msg, size_t len,
                          int* fast) {
  for (int i = 0; i < 4 && m->mem; ++i) {
    uint64_t mm, ms;
    shm_ring_limits(&m->ring, &mm, &ms);
    enum shm_ring_status st = shm_ring_delay(&m->ring) ? SHM_RING_BUSY
                                                       : shm_ring_write(&m->ring, msg, len, mm, ms, (uint32_t)getpid());
    if (st == SHM_RING_OK) {
      ++*fast;
      return 1;
    }
    if (st != SHM_RING_RETIRED) break;
    munmap(m->mem, m->bytes);
    m->mem = NULL;
    /* The next segment; EAGAIN while the retired one still drains: the
     * device (the contract's fallback). */
    struct synchmess_fast_ticket t;
    if (ioctl(fd, SYNCHMESS_IOCTL_FAST_TICKET, &t) != 0) break;
    struct synchmess_fast_reply rep;
    int memfd;
    if (exchange(sock, t.token, group, &rep, &memfd) != 0) break;
    m->bytes = rep.segment_bytes;
    m->mem = mmap(NULL, m->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    close(memfd);
    CHECK(m->mem != MAP_FAILED && shm_ring_attach(&m->ring, m->mem, m->bytes) == 0, "map the next segment");
  }
  if (write(fd, msg, len) == (ssize_t)len) return 1;
  CHECK(errno == EPERM, "device write");
  return 0;
}

static int growth(const char* sock) {
  const unsigned group = 40;
  int g = open_group(group);
  drain(g);
  CHECK(set_storage(1048576) == 0, "SET_PARAMS 1 MiB");
  struct mapping m = map_group(g, group, sock);
  char msg[1000];
  memset(msg, 'g', sizeof msg);
  int n = 0, fast = 0;
  for (;; ++n) {
    snprintf(msg, sizeof msg, "%08d", n);
    if (!contract_write(g, group, sock, &m, msg, sizeof msg, &fast)) break;
  }
  int before = n;
  uint64_t gen0 = m.bytes;
  CHECK(set_storage(4ull << 20) == 0, "SET_PARAMS 4 MiB");
  for (;; ++n) {
    snprintf(msg, sizeof msg, "%08d", n);
    if (!contract_write(g, group, sock, &m, msg, sizeof msg, &fast)) break;
  }
  /* 4 MiB / (1000 + 64) = 3942 messages exactly. */
  int want = (int)((4ull << 20) / (sizeof msg + 64));
  char buf[2000];
  int next = 0, disorder = 0;
  ssize_t r;
  while ((r = read(g, buf, sizeof buf)) > 0) {
    if (r != (ssize_t)sizeof msg || atoi(buf) != next) disorder++;
    ++next;
  }
  /* Drained: the group's next segment is handed out and works. */
  if (!m.mem) m = map_group(g, group, sock);
  int again = contract_write(g, group, sock, &m, "after", 5, &fast) && read(g, buf, sizeof buf) == 5;
  set_storage(1048576);
  printf("growth: %d messages fit 1 MiB, %d after raising to 4 MiB (want %d; %d through the ring; segment %llu -> "
         "%llu bytes); read back %d, %d out of order; fast write on the new segment: %s\n",
         before, n, want, fast, (unsigned long long)gen0, (unsigned long long)m.bytes, next, disorder, again ? "ok" : "FAILED");
  return again && n == want && next == n && disorder == 0 ? 0 : 1;
}

/* ---- retire-forge ---- */
static int retire_forge(const char* sock) {
  int g = open_group(41);
  drain(g);
  for (int i = 0; i < 10; ++i) CHECK(write(g, "queued", 6) == 6, "device write");
  pid_t hostile = fork();
  if (hostile == 0) {
    become(12345);
    struct mapping m = map_group(g, 41, sock);
    __atomic_or_fetch(hword(&m, H_TAIL), (1ull << SIZE_BITS) - 1, __ATOMIC_SEQ_CST);
    _exit(0);
  }
  waitpid(hostile, NULL, 0);
  double t0 = now_s();
  int ok = 0;
  char buf[64];
  while (!ok && now_s() < t0 + 10) {
    drain(g);
    ok = write(g, "after", 5) == 5 && read(g, buf, sizeof buf) == 5 && !memcmp(buf, "after", 5);
    if (!ok) usleep(1000);
  }
  double took = now_s() - t0;
  printf("retire-forge: group usable again after %.0f ms (%s)\n", took * 1e3, ok ? "ok" : "never");
  return ok && took <= 1.0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fast-attack MODE DEVDIR [SOCKET]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  mode = argv[1];
  devdir = argv[2];
  const char* sock = argc > 3 ? argv[3] : NULL;
  int r;
  if (!strcmp(mode, "busy-wedge") && sock)
    r = busy_wedge(sock);
  else if (!strcmp(mode, "stuck-head") && sock)
    r = stuck_head(sock);
  else if (!strcmp(mode, "stored-huge") && sock)
    r = stored_huge(sock);
  else if (!strcmp(mode, "conn-flood") && sock)
    r = conn_flood(sock);
  else if (!strcmp(mode, "touch-all") && sock)
    r = touch_all(sock);
  else if (!strcmp(mode, "socket-junk") && sock)
    r = socket_junk(sock);
  else if (!strcmp(mode, "pollers-cleared") && sock)
    r = pollers_cleared(sock);
  else if (!strcmp(mode, "growth") && sock)
    r = growth(sock);
  else if (!strcmp(mode, "retire-forge") && sock)
    r = retire_forge(sock);
  else if (!strcmp(mode, "ticket-flood"))
    r = ticket_flood();
  else
    return 2;
  if (r == 0) printf("fast-attack %s: ok\n", mode);
  return r;
}
