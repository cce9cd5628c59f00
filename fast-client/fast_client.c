/*
 * fast_client.c - libsynchmess-fast.so: the shared-memory fast path for
 * unmodified, dynamically linked clients (LD_PRELOAD), plus everything
 * libsynchmess-fsync.so does (its objects are linked in: fsync routing on
 * CUSE, the module's vectored and positional I/O), so one preload is enough.
 *
 * Contract:
 * - Which fds: a group device of the synchmess daemon (synchmess_classify.h
 *   says it is one of ours; SYNCHMESS_IOCTL_FAST_TICKET succeeds on it, so
 *   not the master) whose daemon hands out its segment (synchmess_fast.h:
 *   ticket, exchange at the daemon's socket, a memfd sealed against
 *   shrinking, mapped MAP_SHARED, shm_ring_attach).  Every other fd, and a
 *   group whose segment cannot be had (a daemon with --no-fast: ENOTTY; a
 *   failed exchange, mapping or attach), goes to the real functions: the
 *   device, same results, slower.
 * - When: at open/openat (and open64, the fortified __open_2...) of such a
 *   device; otherwise lazily at the first read/write of an fd the library
 *   has not seen (inherited across exec, received over a socket, opened by
 *   glibc internally): one fstat (see synchmess_classify.h) per such fd, the
 *   answer kept until the library sees the fd closed (close, fclose,
 *   close_range, closefrom, dup2/dup3 over it).  The negative answer is kept
 *   per fd number, not per (st_dev, st_ino): checking those would cost an
 *   fstat per call.  An fd closed behind the library's back (a raw
 *   syscall) keeps its answer; a positive one reused for another file would
 *   send that file's I/O to the ring, so only calls the library sees may
 *   close a group fd (glibc's own are all wrapped here).
 * - One mapping per group per process, shared by all its fds (keyed by the
 *   segment memfd's inode, so a restarted daemon's new segment is not taken
 *   for the old one).  fork: the child inherits the mappings (MAP_SHARED)
 *   and the table; the pid recorded in the ring is the child's (pthread_atfork).
 * - write (immediate: the ring's published send delay is 0): shm_ring_write
 *   with the published limits; OK -> count, and SYNCHMESS_IOCTL_FAST_KICK on
 *   the fd if a device poller waits.  FULL over the published storage limit
 *   on the shared counter: -1 EPERM, no system call (the device would say
 *   the same: storage_full below).  FULL short of ring room only, TOO_BIG,
 *   BUSY, CORRUPT, a delay: the device (the daemon applies its own limits
 *   and gives the exact errno).
 * - Statistics: each write and read done on a ring bumps the ring's
 *   shm_ring_note_sent/received hint, which the daemon adds to the group's
 *   sent/received (docs/abi.md "Statistics").  RETIRED: the group's next segment is fetched (a new
 *   ticket) and the write goes there, else to the device.
 * - read: shm_ring_read; OK -> the bytes copied (the whole message is
 *   consumed, as on the devices); EMPTY -> 0, no system call (one pause
 *   instruction: a spin hint for the polling loop around it); BUSY,
 *   CORRUPT: the device.  RETIRED (retired and drained): the next segment.
 *   A 0-byte read or write returns 0 and consumes nothing, as the devices.
 *   An fd opened write-only (read-only) reads (writes) through the device,
 *   which gives EBADF.
 * - SYNCHMESS_FAST_LOG=1 in the environment: one line on stderr per
 *   segment mapped or refused ("synchmess-fast: pid P fd F group G: ..."),
 *   for diagnostics and for the tests that must know the path was taken.
 * - Buffers: before a ring operation the library touches one byte per page
 *   of the caller's buffer (read: and writes it back), under its own
 *   SIGSEGV/SIGBUS handler (SA_NODEFER|SA_ONSTACK, installed at load); a
 *   fault sends the call to the device, which gives EFAULT or the
 *   transport's partial transfer exactly.  The program's own handlers for
 *   those signals (sigaction, signal) are kept by the library and called
 *   for every fault that is not a probe's.  A buffer unmapped by another
 *   thread between the probe and the copy still faults in the program.
 *
 * Thread and signal safety: read and write take no lock and never call
 * malloc, also when they attach a segment (system calls, an mmap'ed record,
 * and synchmess_classify's getenv/snprintf, which do not allocate): they
 * may run in a signal handler.  The fd table is an array of atomic words
 * indexed by fd (0 unknown, 1 not ours, 2 device only, else a segment
 * record | access mode; plus a change count against ABA), updated with
 * compare-and-swap, so what a concurrent dup, open or close set is never
 * overwritten with what was known before.  Segment
 * records (struct fast_map) are never freed: they come from a static pool
 * (then one mmap'ed page each), kept for the life of the process, so a table word never points
 * to freed memory.  The segment a record maps is unmapped only after it was
 * retired and drained, and then only by the last thread using it (a count
 * of users per record, taken around each ring operation: a thread that
 * finds the record no longer live leaves without touching the segment).
 * fds at or above FD_SLOTS (65536) always use the device.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fast_client_internal.h"
#include "fsync-shim/synchmess_classify.h"
#include "ring/shm_ring.h"
#include "synchmess_fast.h"

#define EXPORT __attribute__((visibility("default")))

#define FD_SLOTS 65536
#define GROUP_SLOTS 1024
#define E_UNKNOWN ((uintptr_t)0)
#define E_NOT_OURS ((uintptr_t)1)
#define E_DEVICE ((uintptr_t)2)
#define MODE_R ((uintptr_t)1)
#define MODE_W ((uintptr_t)2)
#define MODE_MASK ((uintptr_t)7)
/* A table word: what (the low 48 bits: one of E_*, or a record's address,
 * 8-aligned, | mode) and a count of changes (the high 16 bits), so that a
 * compare-and-swap from a word read before a close fails when a dup or
 * open gave the number a new meaning meanwhile, even the same one. */
#define WHAT_MASK (((uintptr_t)1 << 48) - 1)
#define SEQ_ONE ((uintptr_t)1 << 48)
/* A segment larger than this is refused (a hostile ticket). */
#define MAX_SEGMENT (1ull << 36)
/* Successive segments one call follows (retirements during one call). */
#define MAX_HOPS 4

enum map_state { MAP_LIVE, MAP_DRAINED, MAP_UNMAPPED };

struct fast_map {
	struct shm_ring ring;
	uint64_t bytes;
	uint64_t seg_dev, seg_ino; /* the memfd's identity */
	uint32_t group;
	_Atomic int state;
	atomic_long users;
	_Atomic(struct fast_map *) next; /* the group's following segment */
};

static _Atomic uintptr_t fd_table[FD_SLOTS];
static atomic_int fd_high; /* highest fd ever given an entry, + 1 */
static _Atomic(struct fast_map *) group_maps[GROUP_SLOTS];
static _Atomic uint32_t my_pid;  /* 0 in another pid namespace than the daemon's */
static _Atomic int pid_foreign;   /* a hand-out showed another pid namespace (kept across fork) */
/* The pid namespace (nsfs device and inode) a hand-out showed to be the
 * daemon's; 0: none seen yet.  A fork child outside it (the parent called
 * unshare(CLONE_NEWPID)) names nobody either. */
static _Atomic uint64_t daemon_ns_dev, daemon_ns_ino;

/* This process's pid namespace; 0 when /proc does not say. */
static int pid_ns(uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) != 0)
		return 0;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 1;
}
static int log_enabled; /* SYNCHMESS_FAST_LOG=1, read once at load */

/* ---- the real functions ------------------------------------------------- */

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*close_fn)(int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*fclose_fn)(FILE *);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static struct {
	read_fn read;
	write_fn write;
	close_fn close;
	dup_fn dup;
	dup2_fn dup2;
	dup3_fn dup3;
	fcntl_fn fcntl;
	open_fn open;
	openat_fn openat;
	fclose_fn fclose;
	close_range_fn close_range;
	closefrom_fn closefrom;
	sigaction_fn sigaction;
} real;

static void lookup_real(void)
{
	*(void **)&real.read = dlsym(RTLD_NEXT, "read");
	*(void **)&real.write = dlsym(RTLD_NEXT, "write");
	*(void **)&real.close = dlsym(RTLD_NEXT, "close");
	*(void **)&real.dup = dlsym(RTLD_NEXT, "dup");
	*(void **)&real.dup2 = dlsym(RTLD_NEXT, "dup2");
	*(void **)&real.dup3 = dlsym(RTLD_NEXT, "dup3");
	/* fcntl64 takes every command fcntl does (LP64: the same function). */
	*(void **)&real.fcntl = dlsym(RTLD_NEXT, "fcntl64");
	if (!real.fcntl)
		*(void **)&real.fcntl = dlsym(RTLD_NEXT, "fcntl");
	*(void **)&real.open = dlsym(RTLD_NEXT, "open");
	*(void **)&real.openat = dlsym(RTLD_NEXT, "openat");
	*(void **)&real.fclose = dlsym(RTLD_NEXT, "fclose");
	*(void **)&real.close_range = dlsym(RTLD_NEXT, "close_range");
	*(void **)&real.closefrom = dlsym(RTLD_NEXT, "closefrom");
	*(void **)&real.sigaction = dlsym(RTLD_NEXT, "sigaction");
}

/* Looked up by the constructor, so a signal handler never runs dlsym;
 * pthread_once covers a call from another library's constructor first. */
#define REAL(name)                                                  \
	(pthread_once(&real_once, lookup_real),                     \
	 real.name ? real.name : (errno = ENOSYS, real.name))

/* ---- buffer probes ---------------------------------------------------------- */

/* The probe in progress in this thread (initial-exec TLS: no allocation). */
static __thread sigjmp_buf *volatile probe_jump __attribute__((tls_model("initial-exec")));
/* What the program asked for SIGSEGV and SIGBUS (our handler stays in). */
static struct sigaction app_action[2];
static int probes_on; /* our handler is installed */

static int sig_slot(int sig)
{
	return sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : -1;
}

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jump = (sigjmp_buf *)probe_jump;
	struct sigaction *app = &app_action[sig_slot(sig)];

	if (jump) {
		/* SA_NODEFER keeps the signal unblocked; a sanitizer's signal
		 * wrapper may block it anyway, and the jump would leave it so. */
		sigset_t faults;
		sigemptyset(&faults);
		sigaddset(&faults, SIGSEGV);
		sigaddset(&faults, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
		probe_jump = NULL;
		siglongjmp(*jump, 1);
	}
	if ((app->sa_flags & SA_SIGINFO) && app->sa_sigaction) {
		app->sa_sigaction(sig, si, uc);
	} else if (!(app->sa_flags & SA_SIGINFO) && app->sa_handler != SIG_DFL &&
		   app->sa_handler != SIG_IGN) {
		app->sa_handler(sig);
	} else {
		/* Default: return to the fault with the default action in place. */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		if (real.sigaction)
			real.sigaction(sig, &dfl, NULL);
	}
}

static void probes_install(void)
{
	struct sigaction sa = {.sa_sigaction = probe_handler,
			       .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART};

	if (!real.sigaction)
		return;
	sigemptyset(&sa.sa_mask);
	if (real.sigaction(SIGSEGV, &sa, &app_action[0]) == 0 &&
	    real.sigaction(SIGBUS, &sa, &app_action[1]) == 0)
		probes_on = 1;
}

/* 1 if every page of [p, p + n) can be read (and written, if writable),
 * as far as a touch shows; 0 on a fault or when probes are off. */
static int probe(const void *p, size_t n, int writable)
{
	sigjmp_buf jump;
	volatile unsigned char *c = (volatile unsigned char *)p;
	size_t off;

	if (!probes_on)
		return 0;
	if (n == 0)
		return 1;
	if (sigsetjmp(jump, 0) != 0)
		return 0; /* probe_jump was cleared by the handler */
	probe_jump = &jump;
	atomic_signal_fence(memory_order_seq_cst); /* set before the touches */
	for (off = 0;; off = off + 4096 - ((uintptr_t)(c + off) & 4095)) {
		if (off >= n)
			off = n - 1;
		unsigned char v = c[off];
		if (writable)
			c[off] = v;
		if (off == n - 1)
			break;
	}
	atomic_signal_fence(memory_order_seq_cst);
	probe_jump = NULL;
	return 1;
}

/* The program's sigaction: SIGSEGV and SIGBUS stay ours and are kept for
 * chaining; everything else is the real call. */
EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	sigaction_fn f = REAL(sigaction);
	int slot = sig_slot(sig);

	if (!f)
		return -1;
	if (slot < 0 || !probes_on)
		return f(sig, act, old);
	if (old)
		*old = app_action[slot];
	if (act)
		app_action[slot] = *act;
	return 0;
}

EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction act = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;

	sigemptyset(&act.sa_mask);
	if (sigaction(sig, &act, &old) != 0)
		return SIG_ERR;
	return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)(void (*)(void))old.sa_sigaction : old.sa_handler;
}

static void after_fork_child(void)
{
	uint64_t dev, ino, want = atomic_load(&daemon_ns_ino);

	if (!atomic_load(&pid_foreign) && want != 0 && pid_ns(&dev, &ino) &&
	    (ino != want || dev != atomic_load(&daemon_ns_dev)))
		atomic_store(&pid_foreign, 1);
	atomic_store(&my_pid, atomic_load(&pid_foreign) ? 0 : (uint32_t)getpid());
}

__attribute__((constructor)) static void fast_init(void)
{
	pthread_once(&real_once, lookup_real);
	const char *log = getenv("SYNCHMESS_FAST_LOG");

	atomic_store(&my_pid, (uint32_t)getpid());
	log_enabled = log && strcmp(log, "1") == 0;
	pthread_atfork(NULL, NULL, after_fork_child);
	probes_install();
}

/* One diagnostic line (SYNCHMESS_FAST_LOG=1); no allocation, errno kept. */
static void fast_log(int fd, long group, const char *what)
{
	char line[160];
	int saved = errno, n;

	if (!log_enabled)
		return;
	n = snprintf(line, sizeof line, "synchmess-fast: pid %u fd %d group %ld: %s\n",
		     (unsigned)getpid(), fd, group, what);
	if (n > 0 && REAL(write))
		real.write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	errno = saved;
}

/* ---- the fd table ------------------------------------------------------- */

static inline uintptr_t what(uintptr_t e)
{
	return e & WHAT_MASK;
}

static inline uintptr_t entry_load(int fd)
{
	if (fd < 0 || fd >= FD_SLOTS)
		return E_NOT_OURS;
	return atomic_load_explicit(&fd_table[fd], memory_order_acquire);
}

static void raise_high(int fd)
{
	int high = atomic_load_explicit(&fd_high, memory_order_relaxed);

	while (fd + 1 > high && !atomic_compare_exchange_weak(&fd_high, &high, fd + 1))
		;
}

/* Sets what fd is (w: a what() value), whatever it was. */
static void entry_store(int fd, uintptr_t w)
{
	uintptr_t cur;

	if (fd < 0 || fd >= FD_SLOTS)
		return;
	cur = atomic_load(&fd_table[fd]);
	while (!atomic_compare_exchange_weak(&fd_table[fd], &cur,
					     ((cur & ~WHAT_MASK) + SEQ_ONE) | w))
		;
	raise_high(fd);
}

/* Sets what fd is unless its word changed since old was read. */
static void entry_replace(int fd, uintptr_t old, uintptr_t w)
{
	if (fd < 0 || fd >= FD_SLOTS)
		return;
	if (atomic_compare_exchange_strong(&fd_table[fd], &old,
					   ((old & ~WHAT_MASK) + SEQ_ONE) | w))
		raise_high(fd);
}

static inline struct fast_map *map_of(uintptr_t e)
{
	return (struct fast_map *)(e & WHAT_MASK & ~MODE_MASK);
}

/* ---- segment records ---------------------------------------------------- */

/* A thread uses a record's segment only between map_enter (true) and
 * map_leave: the segment stays mapped while any thread is inside. */
static inline int map_enter(struct fast_map *m)
{
	atomic_fetch_add(&m->users, 1);
	if (atomic_load(&m->state) == MAP_LIVE)
		return 1;
	atomic_fetch_sub(&m->users, 1);
	return 0;
}

static void map_unmap_if_idle(struct fast_map *m)
{
	int drained = MAP_DRAINED;

	if (atomic_load(&m->users) == 0 &&
	    atomic_compare_exchange_strong(&m->state, &drained, MAP_UNMAPPED))
		munmap(m->ring.base, m->bytes);
}

static inline void map_leave(struct fast_map *m)
{
	if (atomic_fetch_sub(&m->users, 1) == 1 && atomic_load(&m->state) != MAP_LIVE)
		map_unmap_if_idle(m);
}

/* Called by a reader that was told RETIRED (retired and drained): nobody
 * will find anything in this segment any more. */
static void map_drained(struct fast_map *m)
{
	int live = MAP_LIVE;
	struct fast_map *self = m;

	if (atomic_compare_exchange_strong(&m->state, &live, MAP_DRAINED)) {
		if (m->group < GROUP_SLOTS)
			atomic_compare_exchange_strong(&group_maps[m->group], &self, NULL);
		map_unmap_if_idle(m);
	}
}

/* Records come from a static pool first: a page mmap'ed per record would
 * land in the first one-page hole of the program's address space (filling
 * a guard gap the program made on purpose). */
#define POOL_RECORDS 256
static struct fast_map map_pool[POOL_RECORDS];
static atomic_uint map_pool_used;

static struct fast_map *map_alloc(void)
{
	unsigned i = atomic_fetch_add(&map_pool_used, 1);
	void *p;

	if (i < POOL_RECORDS)
		return &map_pool[i];
	p = mmap(NULL, sizeof(struct fast_map), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void map_free(struct fast_map *m)
{
	if (m < map_pool || m >= map_pool + POOL_RECORDS)
		munmap(m, sizeof *m);
	/* a pool record is not reused: records are never freed once shared */
}

static void map_discard(struct fast_map *m)
{
	munmap(m->ring.base, m->bytes);
	map_free(m);
}

/* The group's live record for the segment (dev, ino), if this process has
 * one. */
static struct fast_map *group_lookup(uint32_t group, uint64_t dev, uint64_t ino)
{
	struct fast_map *m;

	if (group >= GROUP_SLOTS)
		return NULL;
	m = atomic_load(&group_maps[group]);
	if (m && m->seg_dev == dev && m->seg_ino == ino && atomic_load(&m->state) == MAP_LIVE)
		return m;
	return NULL;
}

/* Maps a received segment (memfd, not closed here), or finds this
 * process's mapping of it.  NULL with errno on failure. */
static struct fast_map *map_segment(int memfd, uint64_t bytes, uint32_t group)
{
	struct fast_map *m, *cur;
	struct stat st;
	int seals;
	void *base;

	if (fstat(memfd, &st) != 0)
		return NULL;
	m = group_lookup(group, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	if (m)
		return m;
	/* Sealed against shrinking (no SIGBUS under us) and as long as said. */
	seals = REAL(fcntl) ? real.fcntl(memfd, F_GET_SEALS) : -1;
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || bytes < SHM_RING_HEADER_BYTES ||
	    bytes > MAX_SEGMENT || (uint64_t)st.st_size < bytes) {
		errno = EINVAL;
		return NULL;
	}
	base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		return NULL;
	m = map_alloc();
	if (!m) {
		munmap(base, bytes);
		return NULL;
	}
	m->bytes = bytes;
	m->seg_dev = (uint64_t)st.st_dev;
	m->seg_ino = (uint64_t)st.st_ino;
	m->group = group;
	if (shm_ring_attach(&m->ring, base, bytes) != 0) {
		munmap(base, bytes);
		map_free(m);
		errno = EINVAL;
		return NULL;
	}
	atomic_store(&m->state, MAP_LIVE);
	if (group >= GROUP_SLOTS)
		return m; /* not shared: each fd maps its own */
	cur = atomic_load(&group_maps[group]);
	for (;;) {
		if (cur && cur->seg_dev == m->seg_dev && cur->seg_ino == m->seg_ino &&
		    atomic_load(&cur->state) == MAP_LIVE) {
			map_discard(m); /* another thread mapped it first */
			return cur;
		}
		if (atomic_compare_exchange_strong(&group_maps[group], &cur, m))
			return m;
	}
}

/* ---- the hand-out: ticket, socket, memfd --------------------------------- */

/* Receives the group's segment for the ticket; the memfd, or -1. */
static int exchange(const struct synchmess_fast_ticket *t, uint64_t *bytes)
{
	struct synchmess_fast_request req = {.token = t->token, .group = t->group};
	struct synchmess_fast_reply rep;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = &rep, .iov_len = sizeof rep};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	struct cmsghdr *c;
	ssize_t n;
	int s, memfd = -1;

	if (memchr(t->socket_path, 0, sizeof t->socket_path) == NULL ||
	    strlen(t->socket_path) >= sizeof addr.sun_path || t->socket_path[0] == 0)
		return -1;
	strcpy(addr.sun_path, t->socket_path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	/* A daemon that does not answer must not hang the client. */
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&rep, 0, sizeof rep);
	if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0 &&
	    send(s, &req, sizeof req, MSG_NOSIGNAL) == (ssize_t)sizeof req) {
		n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
		for (c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i + sizeof(int) <= c->cmsg_len - CMSG_LEN(0); i += sizeof(int)) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i, sizeof fd);
				if (memfd < 0)
					memfd = fd;
				else
					REAL(close)(fd);
			}
		}
		if (n != (ssize_t)sizeof rep || rep.error != 0 || (msg.msg_flags & MSG_CTRUNC)) {
			if (memfd >= 0)
				REAL(close)(memfd);
			memfd = -1;
		} else {
			synchmess_fast_note_daemon_pid(rep.pid);
		}
		*bytes = rep.segment_bytes;
	}
	REAL(close)(s);
	return memfd;
}

/* The group's current segment for the device fd; NULL if the daemon does
 * not hand one out (or anything fails).  Preserves errno. */
static struct fast_map *fetch(int fd)
{
	struct synchmess_fast_ticket t;
	struct fast_map *m = NULL;
	uint64_t bytes = 0;
	int saved = errno, memfd;

	memset(&t, 0, sizeof t);
	if (ioctl(fd, SYNCHMESS_IOCTL_FAST_TICKET, &t) != 0) {
		fast_log(fd, -1, errno == ENOTTY ? "no segment handed out (ENOTTY): the device"
						 : "ticket refused: the device");
	} else if (t.version != SYNCHMESS_FAST_VERSION) {
		fast_log(fd, t.group, "unknown ticket version: the device");
	} else if ((memfd = exchange(&t, &bytes)) < 0) {
		fast_log(fd, t.group, "exchange at the daemon's socket failed: the device");
	} else {
		m = map_segment(memfd, bytes, t.group);
		fast_log(fd, t.group, m ? "on the shared ring" : "segment refused (seals, size, header): the device");
		REAL(close)(memfd);
	}
	errno = saved;
	return m;
}

/* The fd's access mode bits, 0 for O_PATH or an error. */
static uintptr_t mode_of(int fd)
{
	int fl = REAL(fcntl) ? real.fcntl(fd, F_GETFL) : -1;

	if (fl < 0 || (fl & O_PATH))
		return 0;
	switch (fl & O_ACCMODE) {
	case O_RDONLY: return MODE_R;
	case O_WRONLY: return MODE_W;
	default: return MODE_R | MODE_W;
	}
}

/* Finds out what fd is and records it in place of old; the new entry. */
static uintptr_t classify(int fd, uintptr_t old)
{
	int saved = errno;
	uintptr_t e = E_NOT_OURS, mode;
	struct fast_map *m;

	if (fd >= 0 && fd < FD_SLOTS && synchmess_classify(fd) != SYNCHMESS_NOT_OURS) {
		e = E_DEVICE;
		mode = mode_of(fd);
		if (mode && (m = fetch(fd)) != NULL)
			e = (uintptr_t)m | mode;
	}
	entry_replace(fd, old, e);
	errno = saved;
	return ((old & ~WHAT_MASK) + SEQ_ONE) | e; /* the word, if nobody changed it */
}

/* The group's segment after m (retired): the one this process knows, or a
 * new one from the daemon.  NULL: use the device. */
static struct fast_map *successor(int fd, struct fast_map *m)
{
	struct fast_map *n = atomic_load(&m->next), *expected = NULL;

	if (n)
		return n;
	n = fetch(fd);
	if (!n || n == m)
		return NULL;
	if (!atomic_compare_exchange_strong(&m->next, &expected, n))
		return expected;
	return n;
}

static inline uint32_t pid_now(void)
{
	return atomic_load_explicit(&my_pid, memory_order_relaxed);
}

/* ---- read and write ----------------------------------------------------- */

/* After an empty read: the program will most likely read again at once
 * (a polling loop); the pause lets the other hardware thread of the core
 * run and keeps the loop from flooding the ring's lines with loads that
 * the writer's next store must invalidate.  No system call. */
static inline void spin_hint(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* A FULL write is over the storage limit (and not only short of ring room,
 * which the device may still find): the message with its overhead does not
 * fit under the limit the daemon published, on the counter that both paths
 * charge.  The daemon's own check counts that counter too (and more while
 * an older segment drains), so the device would answer EPERM as well: the
 * library answers it without the round trip.  A forged limit (a client of
 * the group scribbling the header) makes this group's fast writers fail
 * early until the next sweep (100 ms) publishes the daemon's limit again. */
static int storage_full(const struct shm_ring *r, size_t count, uint64_t max_storage)
{
	uint64_t charge = (uint64_t)count + SYNCHMESS_MESSAGE_OVERHEAD, used = shm_ring_stored(r);

	return charge > max_storage || used > max_storage - charge;
}

/* 1: done (*res set); 0: use the device. */
static int fast_read(int fd, void *buf, size_t count, ssize_t *res)
{
	uintptr_t e = entry_load(fd);
	struct fast_map *m;
	enum shm_ring_status st;
	size_t len = 0;

	if (what(e) == E_UNKNOWN)
		e = classify(fd, e);
	m = map_of(e);
	if (!m || !(e & MODE_R))
		return 0;
	if (count == 0) {
		*res = 0;
		return 1;
	}
	/* The most a read copies is the largest message. */
	if (!probe(buf, count < SHM_RING_MAX_PAYLOAD ? count : SHM_RING_MAX_PAYLOAD, 1))
		return 0;
	for (int hop = 0; m && hop < MAX_HOPS; hop++) {
		if (map_enter(m)) {
			st = shm_ring_read(&m->ring, buf, count, &len, pid_now());
			if (st == SHM_RING_OK)
				shm_ring_note_received(&m->ring);
			map_leave(m);
			if (st == SHM_RING_OK) {
				*res = (ssize_t)(len < count ? len : count);
				return 1;
			}
			if (st == SHM_RING_EMPTY) {
				spin_hint();
				*res = 0;
				return 1;
			}
			if (st != SHM_RING_RETIRED)
				return 0;
			map_drained(m);
		}
		/* Retired and drained: this fd reads the group's next segment. */
		struct fast_map *n = successor(fd, m);
		uintptr_t w = n ? (uintptr_t)n | (e & MODE_MASK) : E_DEVICE;
		entry_replace(fd, e, w);
		e = ((e & ~WHAT_MASK) + SEQ_ONE) | w;
		m = n;
	}
	return 0;
}

static int fast_write(int fd, const void *buf, size_t count, ssize_t *res)
{
	uintptr_t e = entry_load(fd);
	struct fast_map *m, *n;
	enum shm_ring_status st;
	uint64_t max_message, max_storage;
	int kick, full, saved;

	if (what(e) == E_UNKNOWN)
		e = classify(fd, e);
	m = map_of(e);
	if (!m || !(e & MODE_W))
		return 0;
	if (count == 0) {
		*res = 0;
		return 1;
	}
	if (count > SHM_RING_MAX_PAYLOAD || !probe(buf, count, 0))
		return 0; /* too big for any group, or a fault: the device says */
	for (int hop = 0; m && hop < MAX_HOPS; hop++) {
		/* A retired segment may still be drained by readers; writes go
		 * to the newest one this process knows. */
		while ((n = atomic_load(&m->next)) != NULL)
			m = n;
		if (map_enter(m)) {
			if (shm_ring_delay(&m->ring) != 0) {
				map_leave(m);
				return 0; /* delayed messages are the daemon's */
			}
			shm_ring_limits(&m->ring, &max_message, &max_storage);
			st = shm_ring_write(&m->ring, buf, count, max_message, max_storage, pid_now());
			kick = st == SHM_RING_OK && shm_ring_pollers(&m->ring);
			if (st == SHM_RING_OK)
				shm_ring_note_sent(&m->ring);
			full = st == SHM_RING_FULL && storage_full(&m->ring, count, max_storage);
			map_leave(m);
			if (full) {
				errno = EPERM;
				*res = -1;
				return 1;
			}
			if (st == SHM_RING_OK) {
				if (kick) {
					saved = errno;
					ioctl(fd, SYNCHMESS_IOCTL_FAST_KICK);
					errno = saved;
				}
				*res = (ssize_t)count;
				return 1;
			}
			if (st != SHM_RING_RETIRED)
				return 0;
		}
		m = successor(fd, m);
	}
	return 0;
}

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	ssize_t res;
	read_fn f;

	if (fast_read(fd, buf, count, &res))
		return res;
	f = REAL(read);
	return f ? f(fd, buf, count) : -1;
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	ssize_t res;
	write_fn f;

	if (fast_write(fd, buf, count, &res))
		return res;
	f = REAL(write);
	return f ? f(fd, buf, count) : -1;
}

/* _FORTIFY_SOURCE's read: glibc's calls its internal read. */
extern void __chk_fail(void) __attribute__((noreturn));

EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return read(fd, buf, count);
}

/* ---- open ------------------------------------------------------------------ */

static int opened(int fd)
{
	if (fd >= 0 && fd < FD_SLOTS) {
		entry_store(fd, E_UNKNOWN);
		classify(fd, entry_load(fd));
	}
	return fd;
}

static int needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define OPEN_MODE(flags, mode)                  \
	do {                                    \
		if (needs_mode(flags)) {        \
			va_list ap;             \
			va_start(ap, flags);    \
			mode = va_arg(ap, mode_t); \
			va_end(ap);             \
		}                               \
	} while (0)

EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	open_fn f = REAL(open);

	OPEN_MODE(flags, mode);
	return f ? opened(f(path, flags, mode)) : -1;
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	openat_fn f = REAL(openat);

	OPEN_MODE(flags, mode);
	return f ? opened(f(dirfd, path, flags, mode)) : -1;
}

/* LP64: O_LARGEFILE is implied; the *64 names are the same calls. */
EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));
EXPORT int openat64(int dirfd, const char *path, int flags, ...)
	__attribute__((alias("openat")));

/* The fortified entry points (no mode: glibc calls them without O_CREAT). */
EXPORT int __open_2(const char *path, int flags)
{
	return open(path, flags);
}
EXPORT int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}
EXPORT int __openat64_2(int dirfd, const char *path, int flags)
	__attribute__((alias("__openat_2")));

/* ---- close and dup ---------------------------------------------------------- */

/* After fd was closed: forget what was known (unless it was reused). */
static void forget(int fd, uintptr_t old)
{
	entry_replace(fd, old, E_UNKNOWN);
}

EXPORT int close(int fd)
{
	uintptr_t old = entry_load(fd);
	close_fn f = REAL(close);
	int r = f ? f(fd) : -1;

	forget(fd, old); /* Linux frees the fd even when close fails */
	return r;
}

EXPORT int fclose(FILE *stream)
{
	int fd = stream ? fileno(stream) : -1;
	uintptr_t old = entry_load(fd);
	fclose_fn f = REAL(fclose);
	int r = f ? f(stream) : EOF;

	if (fd >= 0)
		forget(fd, old);
	return r;
}

static void forget_range(unsigned first, unsigned last)
{
	unsigned high = (unsigned)atomic_load(&fd_high);

	for (unsigned fd = first; fd < high && fd <= last; fd++)
		entry_store((int)fd, E_UNKNOWN);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	close_range_fn f = REAL(close_range);
	int r = f ? f(first, last, flags) : -1;

	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		forget_range(first, last);
	return r;
}

EXPORT void closefrom(int lowfd)
{
	closefrom_fn f = REAL(closefrom);

	if (f)
		f(lowfd);
	if (lowfd >= 0)
		forget_range((unsigned)lowfd, ~0u);
}

/* newfd now refers to what oldfd does (an oldfd outside the table: found
 * out again at newfd's first read or write). */
static int duplicated(int oldfd, int newfd)
{
	uintptr_t e = oldfd >= 0 && oldfd < FD_SLOTS ? what(entry_load(oldfd)) : E_UNKNOWN;

	if (newfd >= 0 && newfd != oldfd)
		entry_store(newfd, e);
	return newfd;
}

EXPORT int dup(int oldfd)
{
	dup_fn f = REAL(dup);

	return f ? duplicated(oldfd, f(oldfd)) : -1;
}

EXPORT int dup2(int oldfd, int newfd)
{
	dup2_fn f = REAL(dup2);

	return f ? duplicated(oldfd, f(oldfd, newfd)) : -1;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	dup3_fn f = REAL(dup3);

	return f ? duplicated(oldfd, f(oldfd, newfd, flags)) : -1;
}

/* Every command's argument fits a pointer-sized word (int, long or a
 * pointer), so it is passed on as one. */
EXPORT int fcntl(int fd, int cmd, ...)
{
	fcntl_fn f = REAL(fcntl);
	va_list ap;
	void *arg;
	int r;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!f)
		return -1;
	r = f(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		duplicated(fd, r);
	return r;
}

EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- for the unit test ---------------------------------------------------- */

void synchmess_fast_note_daemon_pid(uint32_t seen)
{
	/* Another pid namespace: our pid means another process (or none) to
	 * the daemon's sweep, which would give our records up as a dead
	 * process's after 200 ms.  Name nobody: the sweep then waits its live
	 * bound.  0: a daemon that does not say. */
	uint64_t dev, ino;

	if (seen != 0 && seen != (uint32_t)getpid()) {
		atomic_store(&pid_foreign, 1);
		atomic_store(&my_pid, 0);
	} else if (seen != 0 && atomic_load(&daemon_ns_ino) == 0 && pid_ns(&dev, &ino)) {
		atomic_store(&daemon_ns_dev, dev);
		atomic_store(&daemon_ns_ino, ino);
	}
}

int synchmess_fast_adopt(int fd, int memfd, uint32_t group)
{
	struct stat st;
	struct fast_map *m;
	uintptr_t mode = mode_of(fd);

	if (fd < 0 || fd >= FD_SLOTS || !mode || fstat(memfd, &st) != 0) {
		errno = EINVAL;
		return -1;
	}
	m = map_segment(memfd, (uint64_t)st.st_size, group);
	if (!m)
		return -1;
	entry_store(fd, (uintptr_t)m | mode);
	return 0;
}

int synchmess_fast_state(int fd)
{
	uintptr_t e = what(entry_load(fd));

	if (e == E_UNKNOWN || e == E_NOT_OURS || e == E_DEVICE)
		return (int)e;
	return 3;
}
