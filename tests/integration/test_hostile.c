/*
 * test_hostile.c - what a hostile local user tries through the devices:
 * pointing IOCTL_INSTALL_GROUP at a mapping of a group file (the daemon
 * would fault on its own filesystem), at a struct that straddles a
 * read-only page (all or nothing), at a page whose fault never ends (a
 * userfaultfd nobody answers), and many sleepers racing signals and AWAKE
 * (exact counts, no lost interrupt).
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>
#include <unistd.h>

#include "client.h"

#define PAGE 4096
#define ATTACKERS 6 /* more than the daemon's threads */
#define QUEUED 8

static int installed(const struct sm_ctx *ctx, unsigned desc)
{
	char path[512];
	struct stat st;

	sm_expected_path(ctx, desc, path, sizeof path);
	return stat(path, &st) == 0;
}

/* One attacker: a group_t whose device_path starts on a MAP_PRIVATE page of
 * the group file.  Exit status: 0 EFAULT as expected, 1 anything else. */
static int map_attack(const char *master_path, int g, unsigned desc)
{
	int m = open(master_path, O_RDONLY);
	char *a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m < 0 || a == MAP_FAILED)
		return 1;
	if (mmap(a + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, g, 0) == MAP_FAILED)
		return 1;
	struct group_t *gt = (struct group_t *)(a + PAGE - 8);
	gt->descriptor = desc;
	errno = 0;
	int r = ioctl(m, IOCTL_INSTALL_GROUP, gt);
	return r == -1 && errno == EFAULT ? 0 : 1;
}

enum sm_result test_hostile_map_group(struct sm_ctx *ctx)
{
	char buf[64], master[512];
	unsigned victim = ctx->groups[1];
	int fd = sm_group_fresh(ctx, 0), queued = 0, was_installed = installed(ctx, victim);
	pid_t kids[ATTACKERS];

	if (fd < 0)
		return SM_FAIL;
	if (was_installed) {
		snprintf(ctx->reason, sizeof ctx->reason,
			 "group %u exists already (not a fresh daemon): cannot check that nothing is installed", victim);
		close(fd);
		return SM_SKIP;
	}
	memset(buf, 'm', sizeof buf);
	/* Through the kernel even under synchmess-fast: the FUSE write grows
	 * the file's cached size, without which the positive control below
	 * would read beyond EOF (SIGBUS) instead of reaching the daemon. */
	for (int i = 0; i < QUEUED; i++)
		CHECK_RET(syscall(SYS_write, fd, buf, 32), 32);
	errno = 0;
	void *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(s == MAP_FAILED, "MAP_SHARED of a group file succeeded");
	void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (ctx->transport == SM_CUSE) {
		/* A character device without mmap: nothing to attack. */
		CHECK(p == MAP_FAILED && errno == ENODEV, "MAP_PRIVATE of a CUSE group: %p", p);
		goto count;
	}
	/* FUSE lets MAP_PRIVATE through (the kernel decides); the daemon must
	 * refuse what its helper faults, and never block on it. */
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	snprintf(master, sizeof master, "%s/synchmess", ctx->dev_dir);
	for (int k = 0; k < ATTACKERS; k++) {
		kids[k] = fork();
		if (kids[k] == 0)
			_exit(map_attack(master, fd, victim));
	}
	int bad = 0;
	for (int k = 0; k < ATTACKERS; k++) {
		int st = 0;
		if (kids[k] > 0 && waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) &&
		    WEXITSTATUS(st) == 0)
			continue;
		bad++;
	}
	CHECK(bad == 0, "%d of %d installs through a private mapping of a group file did not fail EFAULT",
	      bad, ATTACKERS);
	CHECK(!installed(ctx, victim), "a failed install (EFAULT) still installed group %u", victim);
	/* Positive control: the same mapping touched by an ordinary process
	 * reads one message through the page cache, so the helper's faults
	 * above did reach the daemon and were refused (not SIGBUS beyond EOF). */
	pid_t toucher = fork();
	if (toucher == 0) {
		volatile char *q = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		_exit(q == MAP_FAILED ? 1 : (q[0] == 'm' ? 0 : 2));
	}
	int tst = 0;
	CHECK(toucher > 0 && waitpid(toucher, &tst, 0) == toucher && WIFEXITED(tst) && WEXITSTATUS(tst) == 0,
	      "an ordinary process could not read a message through a private mapping (status %d): "
	      "the attack above no longer reaches the daemon, the test is void", tst);
	queued = 1; /* the one the control consumed */
count:
	while (read(fd, buf, sizeof buf) > 0)
		queued++;
	CHECK(queued == QUEUED, "%d of %d queued messages left: the attack consumed some", queued, QUEUED);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* A group_t at `at`, whose bytes after `writable` are on a read-only page
 * (or before it, when head_ro): the install fails EFAULT and the writable
 * part of the struct is exactly as it was. */
static enum sm_result straddle(struct sm_ctx *ctx, int m, unsigned desc, int head_ro)
{
	char *a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	enum sm_result res = SM_FAIL;
	int was = installed(ctx, desc);

	if (was && ctx->transport == SM_FUSE) {
		snprintf(ctx->reason, sizeof ctx->reason,
			 "group %u exists already (not a fresh daemon): cannot check that nothing is installed", desc);
		return SM_SKIP;
	}

	if (a == MAP_FAILED) {
		sm_fail(ctx, 1, "mmap");
		return SM_FAIL;
	}
	/* head_ro: the first 6 bytes on the read-only first page, the rest on
	 * the writable second; else the first 16 writable, the rest read-only. */
	char *at = head_ro ? a + PAGE - 6 : a + PAGE - 16;
	memset(a, 'Q', 2 * PAGE);
	memcpy(at, &desc, sizeof desc);
	CHECK(mprotect(head_ro ? a : a + PAGE, PAGE, PROT_READ) == 0, "mprotect");
	errno = 0;
	int r = ioctl(m, IOCTL_INSTALL_GROUP, (struct group_t *)at);
	CHECK(r == -1 && errno == EFAULT, "install across a read-only page (%s) returned %d (%s)",
	      head_ro ? "head" : "tail", r, strerror(errno));
	if (ctx->transport == SM_FUSE) {
		/* All or nothing: the writable bytes are untouched. */
		const char *w = head_ro ? a + PAGE : at + sizeof desc;
		size_t n = head_ro ? (size_t)(at + sizeof(struct group_t) - (a + PAGE)) : 12;
		for (size_t i = 0; i < n; i++)
			CHECK(w[i] == 'Q', "a failed install wrote byte %zu of the writable part ('%c')", i,
			      w[i]);
		CHECK(!installed(ctx, desc), "a failed install still installed group %u", desc);
	}
	/* CUSE: the kernel copies the reply out like a driver's copy_to_user
	 * (module behaviour): EFAULT is what can be checked. */
	res = SM_PASS;
out:
	munmap(a, 2 * PAGE);
	return res;
}

enum sm_result test_hostile_install_straddle(struct sm_ctx *ctx)
{
	int m = sm_master_open(ctx);
	enum sm_result r = SM_FAIL;

	if (m < 0)
		return SM_FAIL;
	r = straddle(ctx, m, ctx->groups[0], 0);
	if (r == SM_PASS)
		r = straddle(ctx, m, ctx->groups[1], 1);
	close(m);
	return r;
}

/* One attacker: the struct's tail on a page registered with a userfaultfd
 * that is never answered, so a write into it waits for ever.  Writes a
 * byte to `ready` once registered.  Exit 0: EFAULT, 1: anything else, 3:
 * userfaultfd not available here. */
static int uffd_attack(const char *master_path, unsigned desc, int ready)
{
	int m = open(master_path, O_RDONLY);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API };
	char *a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0)
		return 3;
	if (m < 0 || a == MAP_FAILED)
		return 1;
	a[0] = 1; /* the first page is present, the second never will be */
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)(a + PAGE), .len = PAGE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		return 3;
	struct group_t *gt = (struct group_t *)(a + PAGE - 8);
	gt->descriptor = desc;
	/* As root, attack as nobody (the userfaultfd is ours already): the
	 * daemon then refuses nobody's installs for a while (a missed
	 * deadline), not the rest of the suite's. */
	if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
		return 1;
	if (write(ready, "r", 1) != 1)
		return 1;
	errno = 0;
	int r = ioctl(m, IOCTL_INSTALL_GROUP, gt);
	if (r == -1 && errno == EAGAIN)
		return 4; /* refused: an earlier write of this uid missed the deadline */
	return r == -1 && errno == EFAULT ? 0 : 1;
}

/* Installs that fault on a page that never arrives: the first fails EFAULT
 * (after the daemon's deadline), the others of the same user EFAULT or
 * EAGAIN (refused once one missed the deadline), nothing is installed, and
 * meanwhile every other request is served: no thread that serves requests
 * waits on them. */
enum sm_result test_hostile_install_never_faults_in(struct sm_ctx *ctx)
{
	char master[512], buf[64];
	unsigned victim = ctx->groups[1];
	int fd = -1, p[2] = { -1, -1 }, was = installed(ctx, victim), unavailable = 0, bad = 0, efault = 0;
	pid_t kids[3] = { 0, 0, 0 };

	if (ctx->transport == SM_CUSE) {
		snprintf(ctx->reason, sizeof ctx->reason, "CUSE: the kernel copies the struct, not the daemon");
		return SM_SKIP;
	}
	if (was) {
		snprintf(ctx->reason, sizeof ctx->reason,
			 "group %u exists already (not a fresh daemon): cannot check that nothing is installed", victim);
		return SM_SKIP;
	}
	fd = sm_group_fresh(ctx, 0);
	if (fd < 0 || pipe(p) != 0)
		goto out;
	snprintf(master, sizeof master, "%s/synchmess", ctx->dev_dir);
	for (int k = 0; k < 3; k++) {
		kids[k] = fork();
		if (kids[k] == 0)
			_exit(uffd_attack(master, victim, p[1]));
	}
	close(p[1]);
	p[1] = -1;
	/* Wait until every attacker is about to install; then the daemon must
	 * keep serving while they wait (more of them than it has threads). */
	for (int k = 0; k < 3; k++)
		if (read(p[0], buf, 1) != 1)
			break;
	for (int i = 0; i < 200; i++) {
		memset(buf, i, sizeof buf);
		CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
		CHECK_RET(read(fd, buf, sizeof buf), (long)sizeof buf);
		CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	}
	for (int k = 0; k < 3; k++) {
		int st = 0;
		if (kids[k] <= 0 || waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st)) {
			bad++;
			continue;
		}
		kids[k] = 0;
		if (WEXITSTATUS(st) == 3)
			unavailable++;
		else if (WEXITSTATUS(st) == 0)
			efault++;
		else if (WEXITSTATUS(st) != 4)
			bad++;
	}
	if (unavailable) {
		snprintf(ctx->reason, sizeof ctx->reason, "userfaultfd not available to this user");
		close(p[0]);
		close(fd);
		return SM_SKIP;
	}
	CHECK(bad == 0 && efault >= 1,
	      "installs into a never-arriving page: %d EFAULT, %d neither EFAULT nor EAGAIN", efault, bad);
	CHECK(!installed(ctx, victim), "a failed install still installed group %u", victim);
	close(p[0]);
	close(fd);
	return SM_PASS;
out:
	for (int k = 0; k < 3; k++)
		if (kids[k] > 0)
			kill(kids[k], SIGKILL);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	return SM_FAIL;
}

/* Sleepers that are woken, signalled and put back to sleep as fast as the
 * daemon allows: every SLEEP returns 0 (counted by exactly one AWAKE) or
 * EINTR, none is lost, and the counts match exactly. */
#define RACE_SLEEPERS 4
#define RACE_ROUNDS 400

struct racer {
	pthread_t thread;
	int fd;
	atomic_int woken, interrupted, other, done;
};

static void on_usr1(int sig) { (void)sig; }

static void *race_sleep(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		errno = 0;
		int x = ioctl(r->fd, IOCTL_SLEEP);
		if (x == 0)
			atomic_fetch_add(&r->woken, 1);
		else if (errno == EINTR)
			atomic_fetch_add(&r->interrupted, 1);
		else
			atomic_fetch_add(&r->other, 1);
	}
	atomic_store(&r->done, 1);
	return NULL;
}

enum sm_result test_hostile_sleep_race(struct sm_ctx *ctx)
{
	struct racer rs[RACE_SLEEPERS];
	struct sigaction sa = { 0 };
	long awoken = 0;
	int fd = sm_group_fresh(ctx, 0), started = 0;

	if (fd < 0)
		return SM_FAIL;
	sa.sa_handler = on_usr1; /* no SA_RESTART: SLEEP returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	memset(rs, 0, sizeof rs);
	for (int i = 0; i < RACE_SLEEPERS; i++) {
		rs[i].fd = fd;
		if (pthread_create(&rs[i].thread, NULL, race_sleep, &rs[i]) != 0)
			break;
		started++;
	}
	CHECK(started == RACE_SLEEPERS, "pthread_create");
	/* Alternate: wake everyone, signal one sleeper, until all finished.
	 * Bounded by the test's deadline (the harness kills a hung test). */
	for (unsigned n = 0;; n++) {
		int all = 1;
		for (int i = 0; i < RACE_SLEEPERS; i++)
			all &= atomic_load(&rs[i].done);
		if (all)
			break;
		int a = ioctl(fd, IOCTL_AWAKE);
		CHECK(a >= 0, "AWAKE failed (%s)", strerror(errno));
		awoken += a;
		if (n % 3 == 0 && !atomic_load(&rs[n % RACE_SLEEPERS].done))
			pthread_kill(rs[n % RACE_SLEEPERS].thread, SIGUSR1);
	}
	long woken = 0, interrupted = 0, other = 0;
	for (int i = 0; i < RACE_SLEEPERS; i++) {
		pthread_join(rs[i].thread, NULL);
		woken += rs[i].woken;
		interrupted += rs[i].interrupted;
		other += rs[i].other;
	}
	CHECK(other == 0, "%ld SLEEPs failed with neither 0 nor EINTR", other);
	CHECK(woken + interrupted == (long)RACE_SLEEPERS * RACE_ROUNDS, "%ld + %ld SLEEPs returned, expected %d",
	      woken, interrupted, RACE_SLEEPERS * RACE_ROUNDS);
	CHECK(awoken == woken, "AWAKE counted %ld sleepers, %ld SLEEPs returned 0", awoken, woken);
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}
