/*
 * fast_mixed.c - fast-path clients and device clients on the same groups,
 * through a live daemon.  Run under synchmess-fast (the program checks that
 * libsynchmess-fast.so is loaded): a "fast" role uses the C library's
 * read/write (the library's ring), a "device" role the read/write system
 * calls (the device), in separate processes.
 *
 *   fast-mixed --dev-dir DIR mixed  [--group G] [--messages N]
 *   fast-mixed --dev-dir DIR kill   [--group G] [--messages N] [--seed S]
 *   fast-mixed --dev-dir DIR poll   [--group G]
 *   fast-mixed --dev-dir DIR exec   [--group G]
 *
 * mixed: 2 fast + 2 device writers, N messages each (default 3000), and 2
 *   fast + 2 device readers on one group: every message acknowledged to its
 *   writer is read exactly once, in each reader in its writer's order.
 * kill: 3 fast + 3 device writers and 2 + 2 readers; SIGKILL at random
 *   moments (seed S) to 2 writers and 2 readers (reaped at once); after each
 *   kill the survivors must read again within 1 s; nothing may be lost but
 *   a killed writer's message in flight (which may also arrive) and at most
 *   one message per killed reader (read but not yet recorded); nothing
 *   duplicated; FIFO per writer in each reader.
 * poll: a device reader blocked in poll(), then one in epoll_wait(), is
 *   woken by a fast write within 2 s and reads the message.
 * exec: a process execs with the group fd open; the new image writes
 *   through it (the library re-attaches lazily) and the parent reads it
 *   through the device.  (Run with SYNCHMESS_FAST_LOG=1 to see the path.)
 * Prints what failed; exit 0 only if everything held.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

#define MAX_WRITERS 8
#define MAX_READERS 8
#define MAX_RECORDS 65536
#define MSG_LEN 32

static const char *dev_dir;
static unsigned group_id = 40;
static char group_path[512];

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static ssize_t io_write(int fast, int fd, const void *b, size_t n)
{
	return fast ? write(fd, b, n) : syscall(SYS_write, fd, b, n);
}
static ssize_t io_read(int fast, int fd, void *b, size_t n)
{
	return fast ? read(fd, b, n) : syscall(SYS_read, fd, b, n);
}

static int fast_loaded(void)
{
	Dl_info info = {0};
	void *fn = dlsym(RTLD_DEFAULT, "write");
	return fn && dladdr(fn, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libsynchmess-fast.so") != NULL;
}

/* Installs the group and opens it; exits on failure. */
static int open_group(int flags)
{
	char master[512];
	struct group_t g = {.descriptor = (int)group_id};
	int m, fd;

	snprintf(master, sizeof master, "%s/synchmess", dev_dir);
	m = open(master, O_RDONLY | O_CLOEXEC);
	if (m < 0 || ioctl(m, IOCTL_INSTALL_GROUP, &g) < 0) {
		fprintf(stderr, "fast-mixed: install group %u at %s: %s\n", group_id, master, strerror(errno));
		exit(2);
	}
	close(m);
	snprintf(group_path, sizeof group_path, "%s/synchmess%u", dev_dir, group_id);
	fd = open(group_path, flags);
	if (fd < 0) {
		fprintf(stderr, "fast-mixed: open %s: %s\n", group_path, strerror(errno));
		exit(2);
	}
	return fd;
}

/* ---- mixed and kill ------------------------------------------------------- */

struct shared {
	atomic_uint acked[MAX_WRITERS];    /* writes that returned success */
	atomic_int writers_done, stop;
	atomic_ulong total_read;
	struct reader_log {
		atomic_uint count;
		uint32_t rec[MAX_RECORDS]; /* writer << 24 | seq */
	} readers[MAX_READERS];
};
static struct shared *sh;

static void writer(int id, int fast, unsigned messages)
{
	int fd = open_group(O_WRONLY | O_CLOEXEC);
	char msg[MSG_LEN];

	for (unsigned s = 0; s < messages;) {
		memset(msg, '.', sizeof msg);
		snprintf(msg, sizeof msg, "w%02d s%08u", id, s);
		if (io_write(fast, fd, msg, sizeof msg) == (ssize_t)sizeof msg) {
			atomic_store(&sh->acked[id], ++s);
		} else if (errno != EPERM) { /* EPERM: the group is full, retry */
			fprintf(stderr, "writer %d: write: %s\n", id, strerror(errno));
			_exit(1);
		}
	}
	atomic_fetch_add(&sh->writers_done, 1);
	_exit(0);
}

static int record(struct reader_log *log, const char *buf, ssize_t n)
{
	unsigned w, s;

	if (n != MSG_LEN || sscanf(buf, "w%02u s%08u", &w, &s) != 2 || w >= MAX_WRITERS ||
	    s >= (1u << 24)) {
		fprintf(stderr, "garbled message (%zd bytes): %.*s\n", n, (int)(n > 0 ? n : 0), buf);
		return -1;
	}
	unsigned c = atomic_load(&log->count);
	if (c >= MAX_RECORDS)
		return -1;
	log->rec[c] = w << 24 | s;
	atomic_store(&log->count, c + 1);
	atomic_fetch_add(&sh->total_read, 1);
	return 0;
}

static void reader(int id, int fast)
{
	int fd = open_group(O_RDONLY | O_CLOEXEC);
	char buf[MSG_LEN + 64];
	ssize_t n;

	while (!atomic_load(&sh->stop)) {
		n = io_read(fast, fd, buf, sizeof buf);
		if (n > 0 && record(&sh->readers[id], buf, n) != 0)
			_exit(1);
		if (n < 0) {
			fprintf(stderr, "reader %d: read: %s\n", id, strerror(errno));
			_exit(1);
		}
	}
	_exit(0);
}

static int mixed(unsigned messages, int kills, unsigned seed)
{
	int writers = kills ? 6 : 4, readers = 4, bad = 0;
	pid_t wpid[MAX_WRITERS], rpid[MAX_READERS];
	int wkilled[MAX_WRITERS] = {0}, rkilled = 0, status;
	char buf[MSG_LEN + 64];
	int drain = open_group(O_RDONLY | O_CLOEXEC);

	while (syscall(SYS_read, drain, buf, sizeof buf) > 0)
		; /* leftovers of earlier runs */
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	for (int r = 0; r < readers; r++)
		if ((rpid[r] = fork()) == 0)
			reader(r, r % 2 == 0);
	for (int w = 0; w < writers; w++)
		if ((wpid[w] = fork()) == 0)
			writer(w, w % 2 == 0, messages);
	srand(seed);
	if (kills) {
		/* Kill writers 0 (fast) and 1 (device), readers 0 (fast), 1 (device). */
		int victims[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}}; /* {index, is_reader} */
		for (int k = 0; k < 4; k++) {
			uint64_t wait_until = now_ms() + 20 + (uint64_t)(rand() % 150);
			while (now_ms() < wait_until)
				sched_yield();
			pid_t victim = victims[k][1] ? rpid[victims[k][0]] : wpid[victims[k][0]];
			unsigned long before = atomic_load(&sh->total_read);
			kill(victim, SIGKILL);
			waitpid(victim, &status, 0); /* reaped: the sweep sees the pid gone */
			if (victims[k][1])
				rkilled++;
			else
				wkilled[victims[k][0]] = 1;
			uint64_t t0 = now_ms();
			while (atomic_load(&sh->total_read) == before && now_ms() - t0 < 1000 &&
			       atomic_load(&sh->writers_done) < writers - 2)
				sched_yield();
			if (atomic_load(&sh->total_read) == before && atomic_load(&sh->writers_done) < writers - 2) {
				printf("FAIL: no message read within 1 s after killing %s %d\n",
				       victims[k][1] ? "reader" : "writer", victims[k][0]);
				bad = 1;
			}
		}
	}
	for (int w = 0; w < writers; w++)
		if (!wkilled[w] && (waitpid(wpid[w], &status, 0) != wpid[w] || status != 0)) {
			printf("FAIL: writer %d exited with status %d\n", w, status);
			bad = 1;
		}
	/* Every acknowledged message read (less what killed readers held). */
	unsigned long expected = 0;
	for (int w = 0; w < writers; w++)
		expected += atomic_load(&sh->acked[w]);
	uint64_t t0 = now_ms();
	while (atomic_load(&sh->total_read) + (unsigned long)rkilled < expected && now_ms() - t0 < 30000)
		sched_yield();
	atomic_store(&sh->stop, 1);
	for (int r = 0; r < readers; r++)
		if (!(kills && r < 2) && (waitpid(rpid[r], &status, 0) != rpid[r] || status != 0)) {
			printf("FAIL: reader %d exited with status %d\n", r, status);
			bad = 1;
		}
	/* A killed writer's in-flight message may still be published. */
	t0 = now_ms();
	while (now_ms() - t0 < 3000) {
		ssize_t n = syscall(SYS_read, drain, buf, sizeof buf);
		if (n > 0 && record(&sh->readers[MAX_READERS - 1], buf, n) != 0)
			bad = 1;
		if (n <= 0 && !kills)
			break;
	}
	/* Check. */
	static uint8_t seen[MAX_WRITERS][MAX_RECORDS];
	memset(seen, 0, sizeof seen);
	for (int r = 0; r < MAX_READERS; r++) {
		unsigned last[MAX_WRITERS];
		memset(last, 0xff, sizeof last);
		for (unsigned i = 0; i < atomic_load(&sh->readers[r].count); i++) {
			unsigned w = sh->readers[r].rec[i] >> 24, s = sh->readers[r].rec[i] & 0xffffff;
			if (last[w] != ~0u && s <= last[w]) {
				printf("FAIL: reader %d read writer %u's %u after %u\n", r, w, s, last[w]);
				bad = 1;
			}
			last[w] = s;
			if (s >= MAX_RECORDS || s > atomic_load(&sh->acked[w]) ||
			    (s == atomic_load(&sh->acked[w]) && !wkilled[w])) {
				printf("FAIL: writer %u's message %u was never acknowledged\n", w, s);
				bad = 1;
			} else if (seen[w][s]++) {
				printf("FAIL: writer %u's message %u read twice\n", w, s);
				bad = 1;
			}
		}
	}
	unsigned missing = 0, read_total = 0;
	for (int w = 0; w < writers; w++)
		for (unsigned s = 0; s < atomic_load(&sh->acked[w]); s++) {
			missing += !seen[w][s];
			read_total += seen[w][s];
		}
	if (missing > (unsigned)rkilled) {
		printf("FAIL: %u acknowledged messages missing (allowed %d: one per killed reader)\n", missing, rkilled);
		bad = 1;
	}
	printf("%s: %d writers (%d killed), %d readers (%d killed), %lu acknowledged, %u read once, %u missing\n",
	       kills ? "kill" : "mixed", writers, kills ? 2 : 0, readers, rkilled, expected, read_total, missing);
	return bad;
}

/* ---- poll ------------------------------------------------------------------- */

/* Waits (5 s) until pid is blocked in one of the system calls. */
static int blocked_in(pid_t pid, const long *calls, int ncalls)
{
	char path[64], line[256];
	uint64_t t0 = now_ms();

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	while (now_ms() - t0 < 5000) {
		FILE *f = fopen(path, "r");
		long nr = -1;
		if (f && fgets(line, sizeof line, f))
			nr = strtol(line, NULL, 10);
		if (f)
			fclose(f);
		for (int i = 0; i < ncalls; i++)
			if (nr == calls[i])
				return 1;
		sched_yield();
	}
	return 0;
}

static int poll_test(int use_epoll)
{
	int fd = open_group(O_RDWR | O_CLOEXEC), status = -1;
	char buf[64];
	pid_t child;

	while (syscall(SYS_read, fd, buf, sizeof buf) > 0)
		;
	child = fork();
	if (child == 0) {
		int rfd = open_group(O_RDONLY | O_CLOEXEC), ok;
		uint64_t t0 = now_ms();
		if (use_epoll) {
			int ep = epoll_create1(EPOLL_CLOEXEC);
			struct epoll_event ev = {.events = EPOLLIN}, got;
			ok = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev) == 0 &&
			     epoll_wait(ep, &got, 1, 5000) == 1 && (got.events & EPOLLIN);
		} else {
			struct pollfd p = {.fd = rfd, .events = POLLIN};
			ok = poll(&p, 1, 5000) == 1 && (p.revents & POLLIN);
		}
		ssize_t n = syscall(SYS_read, rfd, buf, sizeof buf);
		_exit(ok && now_ms() - t0 < 5000 && n == 4 && memcmp(buf, "kick", 4) == 0 ? 0 : 1);
	}
	static const long poll_calls[] = {SYS_poll, SYS_ppoll}, epoll_calls[] = {SYS_epoll_wait, SYS_epoll_pwait};
	if (!blocked_in(child, use_epoll ? epoll_calls : poll_calls, 2)) {
		printf("FAIL: the poller never blocked in %s\n", use_epoll ? "epoll_wait" : "poll");
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		return 1;
	}
	uint64_t t0 = now_ms();
	if (write(fd, "kick", 4) != 4) {
		printf("FAIL: fast write: %s\n", strerror(errno));
		return 1;
	}
	waitpid(child, &status, 0);
	uint64_t took = now_ms() - t0;
	if (status != 0 || took > 2000) {
		printf("FAIL: %s waiter on the device: status %d after %llu ms\n", use_epoll ? "epoll" : "poll", status,
		       (unsigned long long)took);
		return 1;
	}
	printf("%s: a device waiter woke %llu ms after a fast write\n", use_epoll ? "epoll" : "poll",
	       (unsigned long long)took);
	return 0;
}

/* ---- exec ------------------------------------------------------------------- */

static int exec_test(const char *self)
{
	int fd = open_group(O_RDWR), status = -1; /* no O_CLOEXEC: the new image keeps it */
	char arg[16], buf[64];
	pid_t child;

	while (syscall(SYS_read, fd, buf, sizeof buf) > 0)
		;
	snprintf(arg, sizeof arg, "%d", fd);
	child = fork();
	if (child == 0) {
		execl(self, self, "--exec-child", arg, (char *)NULL);
		_exit(127);
	}
	waitpid(child, &status, 0);
	ssize_t n = syscall(SYS_read, fd, buf, sizeof buf);
	if (status != 0 || n != 10 || memcmp(buf, "after-exec", 10) != 0) {
		printf("FAIL: exec: child status %d, read %zd\n", status, n);
		return 1;
	}
	printf("exec: the new image wrote through the inherited fd\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	unsigned messages = 3000, seed = (unsigned)time(NULL);

	if (argc == 3 && strcmp(argv[1], "--exec-child") == 0) {
		int fd = atoi(argv[2]);
		return write(fd, "after-exec", 10) == 10 ? 0 : 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dev-dir") == 0 && i + 1 < argc)
			dev_dir = argv[++i];
		else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
			group_id = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
			messages = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = (unsigned)atoi(argv[++i]);
		else
			mode = argv[i];
	}
	if (!dev_dir || !mode || messages == 0 || messages >= MAX_RECORDS / 2) {
		fprintf(stderr, "usage: fast-mixed --dev-dir DIR mixed|kill|poll|exec [--group G] [--messages N] "
				"[--seed S]\n");
		return 2;
	}
	if (!fast_loaded()) {
		fprintf(stderr, "fast-mixed: libsynchmess-fast.so is not loaded: run under synchmess-fast\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(mode, "mixed") == 0)
		return mixed(messages, 0, seed);
	if (strcmp(mode, "kill") == 0) {
		printf("kill: seed %u\n", seed);
		return mixed(messages, 1, seed);
	}
	if (strcmp(mode, "poll") == 0)
		return poll_test(0) | poll_test(1);
	if (strcmp(mode, "exec") == 0)
		return exec_test("/proc/self/exe");
	fprintf(stderr, "fast-mixed: unknown mode %s\n", mode);
	return 2;
}
