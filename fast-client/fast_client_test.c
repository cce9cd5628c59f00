/*
 * fast_client_test.c - libsynchmess-fast.so's code without a daemon: the
 * library's objects are linked into this program (so its read, write,
 * close, dup... are the ones called here), each "group device" is one end
 * of a SOCK_SEQPACKET socketpair (what reaches the device arrives at the
 * other end, so a test sees which path a call took) and its ring is a
 * sealed memfd formatted here, adopted with synchmess_fast_adopt exactly as
 * a segment received from the daemon.  Checks: both paths and when each is
 * taken (delay, too big, zero length, access mode, retirement), fd tracking
 * across dup/dup2/dup3/F_DUPFD/close/fclose/close_range, fork (the child's
 * pid in its records), a write from a signal handler, unmapped buffers
 * (the device's EFAULT, the program's SIGSEGV handler kept), one mapping per
 * group, and threads writing through dups while others dup and close.
 * Prints FAIL lines; exit status 0 only if every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fast-client/fast_client_internal.h"
#include "fsync-shim/test_expect.h"
#include "ring/shm_ring.h"

#define MAX_MESSAGE 4096
#define MAX_STORAGE (1 << 20)

struct group {
	int memfd;          /* the segment, as the daemon would hand it out */
	struct shm_ring r;  /* this test's own view of it (the "daemon") */
	uint64_t bytes;
	int dev, peer;      /* the device fd and where its device I/O lands */
};

static void make_group(struct group *g, uint32_t id)
{
	void *mem;

	g->bytes = shm_ring_segment_bytes(MAX_STORAGE);
	char name[64];

	snprintf(name, sizeof name, "synchmess-test-ring-%u", id);
	g->memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g->memfd < 0 || ftruncate(g->memfd, (off_t)g->bytes) != 0) {
		perror("memfd");
		exit(2);
	}
	mem = mmap(NULL, g->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (mem == MAP_FAILED ||
	    shm_ring_format(&g->r, mem, g->bytes, MAX_MESSAGE, MAX_STORAGE, 1, 1) != 0 ||
	    fcntl(g->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		perror("ring");
		exit(2);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("socketpair");
		exit(2);
	}
	g->dev = sv[0];
	g->peer = sv[1];
	if (synchmess_fast_adopt(g->dev, g->memfd, id) != 0) {
		perror("adopt");
		exit(2);
	}
}

static void drop_group(struct group *g)
{
	close(g->dev);
	close(g->peer);
	close(g->memfd);
	munmap(g->r.base, g->bytes);
}

/* The next message on the ring (test's view), "" when empty. */
static const char *ring_next(struct group *g)
{
	static char buf[MAX_MESSAGE + 1];
	size_t len = 0;

	if (shm_ring_read(&g->r, buf, MAX_MESSAGE, &len, 1) != SHM_RING_OK)
		return "";
	buf[len < MAX_MESSAGE ? len : MAX_MESSAGE] = 0;
	return buf;
}

/* What reached the device, "" when nothing. */
static const char *device_next(struct group *g)
{
	static char buf[8192];
	ssize_t n = recv(g->peer, buf, sizeof buf - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static int ring_put(struct group *g, const char *s)
{
	return shm_ring_write(&g->r, s, strlen(s), MAX_MESSAGE, MAX_STORAGE, 1) == SHM_RING_OK;
}

static void test_paths(void)
{
	struct group g;
	char buf[64], big[MAX_MESSAGE + 1];
	ssize_t n;

	make_group(&g, 1);
	EXPECT(synchmess_fast_state(g.dev) == 3, "adopted fd state %d", synchmess_fast_state(g.dev));
	EXPECT(write(g.dev, "hello", 5) == 5, "fast write");
	EXPECT(strcmp(ring_next(&g), "hello") == 0, "the write is on the ring");
	EXPECT(*device_next(&g) == 0, "and not on the device");

	EXPECT(ring_put(&g, "abc"), "ring write");
	n = read(g.dev, buf, sizeof buf);
	EXPECT(n == 3 && memcmp(buf, "abc", 3) == 0, "fast read %zd", n);
	/* Empty: 0 without asking the device (which has something). */
	EXPECT(send(g.peer, "dev", 3, 0) == 3, "send");
	errno = 1234;
	EXPECT(read(g.dev, buf, sizeof buf) == 0, "empty ring reads 0");
	EXPECT(errno == 1234, "errno untouched by a fast call");
	EXPECT(recv(g.dev, buf, sizeof buf, MSG_DONTWAIT) == 3, "device data still there");

	/* Short buffer: the bytes copied, the whole message consumed. */
	EXPECT(ring_put(&g, "0123456789") && ring_put(&g, "next"), "ring writes");
	EXPECT(read(g.dev, buf, 4) == 4 && memcmp(buf, "0123", 4) == 0, "short read");
	EXPECT(read(g.dev, buf, sizeof buf) == 4 && memcmp(buf, "next", 4) == 0, "next message");

	/* Zero length: 0, nothing consumed or written. */
	EXPECT(ring_put(&g, "kept"), "ring write");
	EXPECT(read(g.dev, buf, 0) == 0, "0-byte read");
	EXPECT(write(g.dev, "x", 0) == 0, "0-byte write");
	EXPECT(strcmp(ring_next(&g), "kept") == 0 && *ring_next(&g) == 0, "0-byte calls changed nothing");
	EXPECT(*device_next(&g) == 0, "0-byte calls reached the device");

	/* A send delay: the daemon's, so the device. */
	shm_ring_set_delay(&g.r, 50);
	EXPECT(write(g.dev, "later", 5) == 5, "delayed write");
	EXPECT(strcmp(device_next(&g), "later") == 0 && *ring_next(&g) == 0, "delayed write on the device");
	shm_ring_set_delay(&g.r, 0);

	/* Over the published max_message: the device gives the errno. */
	memset(big, 'b', sizeof big);
	EXPECT(write(g.dev, big, sizeof big) == (ssize_t)sizeof big, "big write");
	EXPECT(strlen(device_next(&g)) == sizeof big, "too big on the device");

	/* Storage full: EPERM at the same byte as the device, without asking it
	 * (the published limit on the shared counter). */
	shm_ring_set_limits(&g.r, MAX_MESSAGE, 64 + 8);
	EXPECT(write(g.dev, "12345678", 8) == 8, "a write reaching the limit exactly");
	errno = 0;
	EXPECT(write(g.dev, "9", 1) == -1 && errno == EPERM, "one byte over the limit: EPERM (errno %d)", errno);
	EXPECT(strcmp(ring_next(&g), "12345678") == 0 && *ring_next(&g) == 0, "the first fits, the second is not queued");
	EXPECT(*device_next(&g) == 0, "the full write did not reach the device");
	EXPECT(write(g.dev, "9", 1) == 1 && strcmp(ring_next(&g), "9") == 0, "room again after the read");
	shm_ring_set_limits(&g.r, MAX_MESSAGE, MAX_STORAGE);
	drop_group(&g);
}

static void test_modes(void)
{
	struct group g;
	int p[2];
	char c;

	make_group(&g, 2);
	if (pipe(p) != 0)
		exit(2);
	/* A write-only fd of the group reads through the device: EBADF. */
	EXPECT(synchmess_fast_adopt(p[1], g.memfd, 2) == 0, "adopt write end");
	EXPECT(ring_put(&g, "m"), "ring write");
	errno = 0;
	EXPECT(read(p[1], &c, 1) == -1 && errno == EBADF, "read on write-only: EBADF (%d)", errno);
	EXPECT(strcmp(ring_next(&g), "m") == 0, "nothing consumed");
	errno = 0;
	EXPECT(synchmess_fast_adopt(p[0], g.memfd, 2) == 0, "adopt read end");
	EXPECT(write(p[0], "w", 1) == -1 && errno == EBADF, "write on read-only: EBADF (%d)", errno);
	EXPECT(*ring_next(&g) == 0, "nothing written");
	close(p[0]);
	close(p[1]);
	drop_group(&g);
}

/* One mapping per group: count this process's mappings of group id's memfd. */
static int mappings_of_ring(uint32_t id)
{
	char name[64];

	snprintf(name, sizeof name, "synchmess-test-ring-%u ", id);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int count = 0;

	while (f && fgets(line, sizeof line, f))
		count += strstr(line, name) != NULL;
	if (f)
		fclose(f);
	return count;
}

static void test_dup_close(void)
{
	struct group g;
	int d1, d2, d3, d4, p[2], sv[2];
	char buf[16];

	make_group(&g, 3);
	EXPECT(mappings_of_ring(3) == 2, "test's view + one mapping, not %d", mappings_of_ring(3));

	d1 = dup(g.dev);
	EXPECT(synchmess_fast_state(d1) == 3, "dup is fast");
	EXPECT(write(d1, "d1", 2) == 2 && strcmp(ring_next(&g), "d1") == 0, "write through dup");
	d2 = fcntl(g.dev, F_DUPFD_CLOEXEC, 100);
	EXPECT(d2 >= 100 && synchmess_fast_state(d2) == 3, "F_DUPFD_CLOEXEC is fast");
	d3 = fcntl(g.dev, F_DUPFD, 200);
	EXPECT(d3 >= 200 && synchmess_fast_state(d3) == 3, "F_DUPFD is fast");
	EXPECT(dup3(g.dev, 300, O_CLOEXEC) == 300 && synchmess_fast_state(300) == 3, "dup3 is fast");
	EXPECT(write(300, "d3", 2) == 2 && strcmp(ring_next(&g), "d3") == 0, "write through dup3");

	/* A second fd of the same segment shares the mapping. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		exit(2);
	EXPECT(synchmess_fast_adopt(sv[0], g.memfd, 3) == 0, "adopt again");
	EXPECT(mappings_of_ring(3) == 2, "still one mapping, not %d", mappings_of_ring(3) - 1);
	close(sv[0]);
	close(sv[1]);

	/* close: the fd number, reused by a pipe, is the pipe's again. */
	close(d1);
	EXPECT(synchmess_fast_state(d1) == 0, "closed fd forgotten");
	if (pipe(p) != 0)
		exit(2);
	EXPECT(p[0] == d1, "pipe reuses the number (%d, %d)", p[0], d1);
	EXPECT(write(p[1], "pp", 2) == 2 && read(p[0], buf, sizeof buf) == 2, "pipe works");
	EXPECT(synchmess_fast_state(p[0]) == 1 && synchmess_fast_state(p[1]) == 1,
	       "pipe classified not ours (%d)", synchmess_fast_state(p[0]));
	EXPECT(*ring_next(&g) == 0, "nothing on the ring");

	/* dup2 over a fast fd: it is the pipe now; and a pipe over... */
	EXPECT(dup2(p[1], d2) == d2 && synchmess_fast_state(d2) == 1, "dup2 over a fast fd");
	EXPECT(write(d2, "zz", 2) == 2 && read(p[0], buf, sizeof buf) == 2, "write went to the pipe");
	EXPECT(dup2(g.dev, p[1]) == p[1] && synchmess_fast_state(p[1]) == 3, "dup2 of a fast fd");
	EXPECT(write(p[1], "over", 4) == 4 && strcmp(ring_next(&g), "over") == 0, "and it writes to the ring");

	/* fclose of a stream on a fast fd forgets it. */
	d4 = dup(g.dev);
	FILE *f = fdopen(d4, "r+");
	EXPECT(f && synchmess_fast_state(d4) == 3, "fdopen");
	if (f)
		fclose(f);
	EXPECT(synchmess_fast_state(d4) == 0, "fclose forgets the fd");

	/* close_range forgets the range. */
	EXPECT(close_range(300, 300, 0) == 0 && synchmess_fast_state(300) == 0, "close_range");
	EXPECT(close_range((unsigned)d3, (unsigned)d3, CLOSE_RANGE_CLOEXEC) == 0 &&
	       synchmess_fast_state(d3) == 3, "close_range CLOEXEC keeps it");
	close(d3);
	close(d2);
	close(p[0]);
	close(p[1]);
	drop_group(&g);
}

static void test_fork(void)
{
	struct group g;
	pid_t child;
	int status = -1;
	uint64_t word1;

	make_group(&g, 4);
	child = fork();
	if (child == 0)
		_exit(write(g.dev, "child", 5) == 5 ? 0 : 1);
	EXPECT(child > 0 && waitpid(child, &status, 0) == child && status == 0, "child wrote");
	/* The first record of a fresh ring: word1 = length | pid << 32. */
	memcpy(&word1, g.r.base + SHM_RING_HEADER_BYTES + 8, sizeof word1);
	EXPECT((word1 & 0x1fffffffu) == 5 && (pid_t)(word1 >> 32) == child,
	       "record pid %u, child %d", (unsigned)(word1 >> 32), (int)child);
	EXPECT(strcmp(ring_next(&g), "child") == 0, "parent finds the child's message");
	EXPECT(write(g.dev, "parent", 6) == 6 && strcmp(ring_next(&g), "parent") == 0, "parent still fast");
	drop_group(&g);
}

/* The pid of the first record of g's fresh ring (word1 >> 32). */
static pid_t first_record_pid(struct group *g)
{
	uint64_t word1;

	memcpy(&word1, g->r.base + SHM_RING_HEADER_BYTES + 8, sizeof word1);
	return (pid_t)(word1 >> 32);
}

/* A client in another pid namespace than the daemon's (the hand-out reply
 * names another pid than getpid()) names nobody in its records, and so do
 * its forks; a reply naming its own pid, or 0 (an older daemon), changes
 * nothing.  In a child: the decision is process-wide. */
static void test_pid_namespace(void)
{
	pid_t child = fork(), grandchild;
	int status = -1;

	if (child == 0) {
		struct group a, b, c, d;

		make_group(&a, 5);
		make_group(&b, 6);
		make_group(&c, 7);
		make_group(&d, 8);
		synchmess_fast_note_daemon_pid((uint32_t)getpid());
		synchmess_fast_note_daemon_pid(0);
		EXPECT(write(a.dev, "same", 4) == 4 && first_record_pid(&a) == getpid(), "same namespace: pid %d",
		       (int)first_record_pid(&a));
		synchmess_fast_note_daemon_pid((uint32_t)getpid() + 1);
		EXPECT(write(b.dev, "other", 5) == 5 && first_record_pid(&b) == 0, "other namespace: pid %d",
		       (int)first_record_pid(&b));
		grandchild = fork();
		if (grandchild == 0)
			_exit(write(c.dev, "fork", 4) == 4 ? 0 : 1);
		EXPECT(grandchild > 0 && waitpid(grandchild, &status, 0) == grandchild && status == 0, "fork wrote");
		EXPECT(first_record_pid(&c) == 0, "a fork in the other namespace: pid %d", (int)first_record_pid(&c));
		synchmess_fast_note_daemon_pid(0);
		EXPECT(write(d.dev, "kept", 4) == 4 && first_record_pid(&d) == 0, "kept after a 0 reply: pid %d",
		       (int)first_record_pid(&d));
		fflush(stdout);
		_exit(failures ? 1 : 0);
	}
	EXPECT(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the pid namespace checks (their FAIL lines above)");

	/* A process in the daemon's namespace that moves its children into a
	 * new one (unshare(CLONE_NEWPID), root only): the fork child never
	 * gets a hand-out of its own, its inherited mappings name nobody. */
	child = fork();
	if (child == 0) {
		struct group e, f;

		make_group(&e, 9);
		make_group(&f, 10);
		synchmess_fast_note_daemon_pid((uint32_t)getpid());
		grandchild = fork();
		if (grandchild == 0)
			_exit(write(e.dev, "same", 4) == 4 ? 0 : 1);
		EXPECT(grandchild > 0 && waitpid(grandchild, &status, 0) == grandchild && status == 0, "fork wrote");
		EXPECT(first_record_pid(&e) == grandchild, "a fork in the same namespace: pid %d, child %d",
		       (int)first_record_pid(&e), (int)grandchild);
		if (unshare(CLONE_NEWPID) != 0) {
			printf("fast_client_test: unshare(CLONE_NEWPID): %s; the new-namespace fork is not checked\n",
			       strerror(errno));
			fflush(stdout);
			_exit(failures ? 1 : 0);
		}
		grandchild = fork();
		if (grandchild == 0)
			_exit(write(f.dev, "moved", 5) == 5 ? 0 : 1);
		EXPECT(grandchild > 0 && waitpid(grandchild, &status, 0) == grandchild && status == 0, "fork wrote");
		EXPECT(first_record_pid(&f) == 0, "a fork in a new pid namespace: pid %d", (int)first_record_pid(&f));
		fflush(stdout);
		_exit(failures ? 1 : 0);
	}
	EXPECT(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the unshare checks (their FAIL lines above)");
}

static struct group *sig_group;
static volatile sig_atomic_t sig_result;

static void on_signal(int sig)
{
	(void)sig;
	sig_result = write(sig_group->dev, "signal", 6) == 6;
}

static void test_signal(void)
{
	struct group g;

	make_group(&g, 5);
	sig_group = &g;
	signal(SIGUSR1, on_signal);
	raise(SIGUSR1);
	signal(SIGUSR1, SIG_DFL);
	EXPECT(sig_result && strcmp(ring_next(&g), "signal") == 0, "write from a signal handler");
	drop_group(&g);
}

static sigjmp_buf app_jump;
static volatile sig_atomic_t app_handled;

static void app_segv(int sig)
{
	(void)sig;
	app_handled = 1;
	siglongjmp(app_jump, 1);
}

/* Unmapped buffers: the device (EFAULT), nothing consumed or written; the
 * program's own SIGSEGV handler still gets its faults. */
static void test_bad_buffers(void)
{
	struct group g;
	char *none = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	make_group(&g, 8);
	EXPECT(ring_put(&g, "keep"), "ring write");
	errno = 0;
	EXPECT(write(g.dev, none, 16) == -1 && errno == EFAULT, "write from PROT_NONE: EFAULT (%d)", errno);
	/* (The "device" must have data, or its read would wait.) */
	EXPECT(send(g.peer, "d1", 2, 0) == 2 && send(g.peer, "d2", 2, 0) == 2, "send");
	errno = 0;
	EXPECT(read(g.dev, ro, 16) == -1 && errno == EFAULT, "read into read-only: EFAULT (%d)", errno);
	errno = 0;
	EXPECT(read(g.dev, none + 4096 - 8, 16) == -1 && errno == EFAULT, "read into PROT_NONE: EFAULT (%d)", errno);
	while (recv(g.dev, (char[8]){0}, 8, MSG_DONTWAIT) > 0)
		; /* what the failed reads left */
	EXPECT(strcmp(ring_next(&g), "keep") == 0 && *ring_next(&g) == 0, "nothing consumed or written");

	struct sigaction sa = {.sa_handler = app_segv, .sa_flags = SA_NODEFER}, old;
	sigemptyset(&sa.sa_mask);
	EXPECT(sigaction(SIGSEGV, &sa, &old) == 0, "sigaction");
	if (sigsetjmp(app_jump, 1) == 0)
		*(volatile char *)none = 1;
	EXPECT(app_handled, "the program's SIGSEGV handler ran");
	EXPECT(sigaction(SIGSEGV, &old, NULL) == 0, "sigaction restore");
	EXPECT(write(g.dev, "after", 5) == 5 && strcmp(ring_next(&g), "after") == 0, "probes still work");
	munmap(none, 8192);
	munmap(ro, 4096);
	drop_group(&g);
}

static void test_retired(void)
{
	struct group g;
	char buf[16];

	make_group(&g, 6);
	EXPECT(ring_put(&g, "old"), "ring write");
	EXPECT(shm_ring_retire(&g.r) == SHM_RING_OK, "retire");
	/* No next segment (the "device" cannot hand one out): the device. */
	EXPECT(write(g.dev, "new", 3) == 3 && strcmp(device_next(&g), "new") == 0, "write after retirement");
	/* The retired ring is drained first, then the device. */
	EXPECT(read(g.dev, buf, sizeof buf) == 3 && memcmp(buf, "old", 3) == 0, "drains the old ring");
	EXPECT(send(g.peer, "dev", 3, 0) == 3, "send");
	EXPECT(read(g.dev, buf, sizeof buf) == 3 && memcmp(buf, "dev", 3) == 0, "then reads the device");
	EXPECT(synchmess_fast_state(g.dev) == 2, "fd now uses the device (%d)", synchmess_fast_state(g.dev));
	EXPECT(mappings_of_ring(6) == 1, "the drained segment was unmapped (%d)", mappings_of_ring(6));
	drop_group(&g);
}

/* Threads write through their own dups while the main thread reads and a
 * churn thread dups and closes other fds of the group. */
#define WRITERS 4
/* All fit in the ring (no reader needed), so a write takes the device only
 * when the ring is BUSY for all its retries: another writer was preempted
 * between its two reservation steps (seen under TSan on 2 cores).  That is
 * the library's documented fallback, not a lost fd: each writer's fd must
 * still be on the ring after the churn, and every message must arrive once,
 * in order on each path. */
#define PER_WRITER 3000
static struct group thr_group;
static atomic_int churn_stop, writers_done;

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg, fd = dup(thr_group.dev);
	char msg[32];

	EXPECT(synchmess_fast_state(fd) == 3, "writer's dup is fast");
	for (int i = 0; i < PER_WRITER; i++) {
		int len = snprintf(msg, sizeof msg, "%d %d", id, i);
		if (write(fd, msg, (size_t)len) != len)
			break;
	}
	EXPECT(synchmess_fast_state(fd) == 3, "writer %d's dup is still fast after the churn", id);
	close(fd);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		int fd = dup(thr_group.dev);
		int fd2 = dup2(fd, fd + 1000);
		close(fd2);
		close(fd);
	}
	return NULL;
}

/* Takes message "id seq" (from the ring or the device) once, in order
 * after the last one of the same writer on the same path; 0 on a fault. */
static int take(const char *buf, const char *path, int last[WRITERS], unsigned char seen[WRITERS][PER_WRITER])
{
	int id, seq;

	if (sscanf(buf, "%d %d", &id, &seq) != 2 || id < 0 || id >= WRITERS || seq < 0 || seq >= PER_WRITER ||
	    seq <= last[id] || seen[id][seq]) {
		EXPECT(0, "message '%s' on the %s: out of order or twice (writer's last there %d)", buf, path,
		       id >= 0 && id < WRITERS ? last[id] : -1);
		return 0;
	}
	last[id] = seq;
	seen[id][seq] = 1;
	return 1;
}

static void test_threads(void)
{
	static unsigned char seen[WRITERS][PER_WRITER];
	pthread_t w[WRITERS], c;
	int ring_last[WRITERS], dev_last[WRITERS], got = 0, on_device = 0, ok = 1;
	char buf[64];
	ssize_t n;

	for (int i = 0; i < WRITERS; i++)
		ring_last[i] = dev_last[i] = -1;
	make_group(&thr_group, 7);
	/* A read the ring answers BUSY (a writer preempted while copying the
	 * oldest message) takes the device; the module's device returns 0 when
	 * empty, so this stand-in must not block either (it hung a TSan run). */
	fcntl(thr_group.dev, F_SETFL, fcntl(thr_group.dev, F_GETFL) | O_NONBLOCK);
	pthread_create(&c, NULL, churn, NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i);
	while (ok && got < WRITERS * PER_WRITER) {
		int done = atomic_load(&writers_done) == WRITERS;
		n = read(thr_group.dev, buf, sizeof buf - 1);
		if (n <= 0) {
			if (done)
				break; /* empty after every writer returned */
			continue;
		}
		buf[n] = 0;
		ok = take(buf, "ring", ring_last, seen);
		got += ok;
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	atomic_store(&churn_stop, 1);
	pthread_join(c, NULL);
	for (const char *d; ok && *(d = device_next(&thr_group));) { /* what took the device (a BUSY ring) */
		ok = take(d, "device", dev_last, seen);
		on_device += ok;
		got += ok;
	}
	EXPECT(got == WRITERS * PER_WRITER, "read %d of %d (%d of them through the device)", got,
	       WRITERS * PER_WRITER, on_device);
	if (on_device)
		printf("test_threads: %d of %d writes found the ring busy and took the device\n", on_device,
		       WRITERS * PER_WRITER);
	drop_group(&thr_group);
}

int main(void)
{
	test_paths();
	test_modes();
	test_dup_close();
	test_fork();
	test_pid_namespace();
	test_signal();
	test_bad_buffers();
	test_retired();
	test_threads();
	printf("%s\n", failures ? "fast_client_test: FAILED" : "fast_client_test: ok");
	return failures != 0;
}
