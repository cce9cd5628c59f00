/*
 * test_barrier.c - IOCTL_SLEEP / IOCTL_AWAKE: counts, independence of
 * groups, a sleeper ended by a signal (EINTR) or by SIGKILL leaves nothing
 * behind.
 *
 * No test sleeps hoping sleepers have settled.  A sleeper is waited for
 * until the kernel shows it blocked in ioctl(IOCTL_SLEEP) (/proc, see
 * client.h), and sleepers are woken by calling AWAKE until the counts it
 * returns add up to the sleepers expected (the benchmark's pattern): the
 * sum must come out exact, every sleeper must return 0, and a final AWAKE
 * must count 0.  A sleeper that returns without being counted, or a count
 * too high, fails the test whatever the timing.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

/* Generous bounds for waits on a condition (a loaded 2-CPU host, or CUSE
 * under emulation); they only matter when something is broken. */
#define WAIT_MS 10000

struct sleeper {
	pthread_t thread;
	int fd;
	int ret;
	int err;
	atomic_int tid; /* set right before the ioctl */
	atomic_int done;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	atomic_store(&s->tid, (int)gettid());
	errno = 0;
	s->ret = ioctl(s->fd, IOCTL_SLEEP);
	s->err = errno;
	atomic_store(&s->done, 1);
	return NULL;
}

/* Waits until s is blocked in IOCTL_SLEEP (or has returned: the caller's
 * checks decide).  0 or -1 (reason recorded). */
static int wait_asleep(struct sm_ctx *ctx, struct sleeper *s)
{
	double end = sm_now_ms() + WAIT_MS;

	while (atomic_load(&s->tid) == 0) {
		if (sm_now_ms() > end) {
			sm_fail(ctx, 0, "sleeper thread did not start within %d ms",
				WAIT_MS);
			return -1;
		}
		sm_sleep_ms(1);
	}
	return sm_wait_in_ioctl(ctx, atomic_load(&s->tid), IOCTL_SLEEP, &s->done,
				WAIT_MS) < 0 ? -1 : 0;
}

static int start_sleeper(struct sm_ctx *ctx, struct sleeper *s, unsigned desc)
{
	memset(s, 0, sizeof *s);
	atomic_init(&s->tid, 0);
	atomic_init(&s->done, 0);
	static unsigned nth; /* sleepers alternate between the hosts */
	s->fd = sm_group_open_nth(ctx, desc, nth++);
	if (s->fd < 0)
		return -1;
	int e = pthread_create(&s->thread, NULL, sleeper_main, s);
	if (e != 0) {
		errno = e;
		sm_fail(ctx, 1, "pthread_create failed");
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	return 0;
}

/* Waits until every sleeper returned, at most ms; joins them.  Returns the
 * number still blocked (not joined) at the deadline. */
static int wait_sleepers(struct sleeper *s, int n, unsigned ms)
{
	double end = sm_now_ms() + ms;
	int left;

	for (;;) {
		left = 0;
		for (int i = 0; i < n; i++)
			left += !atomic_load(&s[i].done);
		if (left == 0 || sm_now_ms() > end)
			break;
		sm_sleep_ms(2);
	}
	for (int i = 0; i < n; i++)
		if (atomic_load(&s[i].done))
			pthread_join(s[i].thread, NULL);
	return left;
}

static int count_done(struct sleeper *s, int n)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += atomic_load(&s[i].done);
	return c;
}

/* Calls AWAKE on fd until the counts it returns add up to want, or every
 * one of the n sleepers s has returned (anything returned was counted by an
 * AWAKE that already came back, so a shortfall then is final), or WAIT_MS
 * pass.  Returns the sum, or -1 if AWAKE failed (reason recorded). */
static long awake_until(struct sm_ctx *ctx, int fd, struct sleeper *s, int n,
			long want)
{
	double end = sm_now_ms() + WAIT_MS;
	long sum = 0;

	for (;;) {
		int r = ioctl(fd, IOCTL_AWAKE);
		if (r < 0) {
			sm_fail(ctx, 1, "IOCTL_AWAKE failed");
			return -1;
		}
		sum += r;
		if (sum >= want || count_done(s, n) == n || sm_now_ms() > end)
			return sum;
		sm_sleep_ms(1);
	}
}

enum sm_result test_barrier_awake_counts(struct sm_ctx *ctx)
{
	struct sleeper s[3];
	int started = 0, fd = sm_group_fresh(ctx, 0);
	long woken;

	if (fd < 0)
		return SM_FAIL;
	for (; started < 3; started++)
		if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
			goto out;
	for (int i = 0; i < 3; i++)
		if (wait_asleep(ctx, &s[i]) != 0)
			goto out;
	CHECK(count_done(s, 3) == 0, "IOCTL_SLEEP returned without AWAKE (ret %d, %s)",
	      s[0].ret, sm_errname(s[0].err));
	woken = awake_until(ctx, fd, s, 3, 3);
	if (woken < 0)
		goto out;
	CHECK(woken == 3, "AWAKE counted %ld sleepers in all, expected 3 "
	      "(%d of 3 returned)", woken, count_done(s, 3));
	int left = wait_sleepers(s, 3, WAIT_MS);
	CHECK(left == 0, "%d of 3 sleepers still blocked %d ms after AWAKE counted them",
	      left, WAIT_MS);
	for (int i = 0; i < 3; i++)
		CHECK(s[i].ret == 0, "sleeper %d returned %d (%s)", i, s[i].ret,
		      sm_errname(s[i].err));
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	for (int i = 0; i < 3; i++)
		close(s[i].fd);
	close(fd);
	return SM_PASS;
out:
	/* Release whoever is still asleep so the group is clean. */
	for (int tries = 0; tries < 20 && count_done(s, started) < started; tries++) {
		ioctl(fd, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	close(fd);
	return SM_FAIL;
}

enum sm_result test_barrier_awake_none(struct sm_ctx *ctx)
{
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}

/* a's sleeper is asleep before b's sleeper starts, so the AWAKEs on b run
 * while it is asleep too: they must count b's sleeper only, and a's
 * sleeper must then be counted by an AWAKE on a. */
enum sm_result test_barrier_groups_independent(struct sm_ctx *ctx)
{
	struct sleeper sa, sb;
	int started_a = 0, started_b = 0, a = -1, b = -1;
	long woken;

	a = sm_group_fresh(ctx, 0);
	if (a < 0)
		return SM_FAIL;
	b = sm_group_fresh(ctx, 1);
	if (b < 0)
		goto out;
	if (start_sleeper(ctx, &sa, ctx->groups[0]) != 0)
		goto out;
	started_a = 1;
	if (wait_asleep(ctx, &sa) != 0)
		goto out;
	CHECK(!atomic_load(&sa.done), "IOCTL_SLEEP returned without AWAKE");
	CHECK_RET(ioctl(b, IOCTL_AWAKE), 0);
	if (start_sleeper(ctx, &sb, ctx->groups[1]) != 0)
		goto out;
	started_b = 1;
	if (wait_asleep(ctx, &sb) != 0)
		goto out;
	woken = awake_until(ctx, b, &sb, 1, 1);
	if (woken < 0)
		goto out;
	CHECK(woken == 1, "AWAKE on group %u counted %ld sleepers, expected 1 "
	      "(its own)", ctx->groups[1], woken);
	CHECK(wait_sleepers(&sb, 1, WAIT_MS) == 0, "sleeper of group %u still "
	      "blocked after AWAKE counted it", ctx->groups[1]);
	started_b = 0;
	CHECK(sb.ret == 0, "sleeper returned %d (%s)", sb.ret, sm_errname(sb.err));
	CHECK(!atomic_load(&sa.done), "AWAKE on group %u woke a sleeper of group %u",
	      ctx->groups[1], ctx->groups[0]);
	CHECK_RET(ioctl(b, IOCTL_AWAKE), 0);

	woken = awake_until(ctx, a, &sa, 1, 1);
	if (woken < 0)
		goto out;
	CHECK(woken == 1, "AWAKE on group %u counted %ld sleepers, expected 1 "
	      "(its sleeper returned: %d)", ctx->groups[0], woken,
	      atomic_load(&sa.done));
	CHECK(wait_sleepers(&sa, 1, WAIT_MS) == 0, "sleeper still blocked after "
	      "AWAKE counted it");
	started_a = 0;
	CHECK(sa.ret == 0, "sleeper returned %d (%s)", sa.ret, sm_errname(sa.err));
	CHECK_RET(ioctl(a, IOCTL_AWAKE), 0);
	close(sa.fd);
	close(sb.fd);
	close(a);
	close(b);
	return SM_PASS;
out:
	for (int tries = 0; started_a && tries < 20 && !atomic_load(&sa.done); tries++) {
		ioctl(a, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	for (int tries = 0; started_b && tries < 20 && !atomic_load(&sb.done); tries++) {
		ioctl(b, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	close(a);
	if (b >= 0)
		close(b);
	return SM_FAIL;
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/* s[1] is asleep first, then s[0]; s[0] is signalled once it is known to
 * be blocked in the ioctl (so the signal cannot land before it). */
enum sm_result test_barrier_signal_eintr(struct sm_ctx *ctx)
{
	struct sleeper s[2];
	struct sigaction sa;
	int started = 0, fd = sm_group_fresh(ctx, 0);
	long woken;

	if (fd < 0)
		return SM_FAIL;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = 0; /* no SA_RESTART: the ioctl must come back EINTR */
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));

	/* started counts from the end: s[1] first, then s[0]. */
	for (int i = 1; i >= 0; i--) {
		if (start_sleeper(ctx, &s[i], ctx->groups[0]) != 0)
			goto out;
		started++;
		if (wait_asleep(ctx, &s[i]) != 0)
			goto out;
	}
	CHECK(count_done(s, 2) == 0, "IOCTL_SLEEP returned without AWAKE");

	int e = pthread_kill(s[0].thread, SIGUSR1);
	CHECK(e == 0, "pthread_kill failed: %s", strerror(e));
	CHECK(wait_sleepers(&s[0], 1, WAIT_MS) == 0,
	      "sleeper still blocked %d ms after a signal (interrupt not handled)",
	      WAIT_MS);
	CHECK(s[0].ret == -1 && s[0].err == EINTR,
	      "interrupted sleeper returned %d errno %s, expected -1 EINTR",
	      s[0].ret, sm_errname(s[0].err));
	CHECK(!atomic_load(&s[1].done), "the other sleeper returned too (ret %d, %s)",
	      s[1].ret, sm_errname(s[1].err));

	/* Only the sleeper that is still there is counted (not the interrupted
	 * one, and the other one was not released uncounted). */
	woken = awake_until(ctx, fd, &s[1], 1, 1);
	if (woken < 0)
		goto out;
	CHECK(woken == 1, "AWAKE counted %ld sleepers after one of two was "
	      "interrupted, expected 1 (the other returned: %d, %d %s)", woken,
	      atomic_load(&s[1].done), s[1].ret, sm_errname(s[1].err));
	CHECK(wait_sleepers(&s[1], 1, WAIT_MS) == 0,
	      "sleeper still blocked after AWAKE counted it");
	CHECK(s[1].ret == 0, "sleeper returned %d (%s)", s[1].ret, sm_errname(s[1].err));
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	close(s[0].fd);
	close(s[1].fd);
	close(fd);
	return SM_PASS;
out:
	for (int tries = 0; tries < 20 && started > 0 &&
	     count_done(&s[2 - started], started) < started; tries++) {
		ioctl(fd, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	close(fd);
	return SM_FAIL;
}

enum sm_result test_barrier_sigkill(struct sm_ctx *ctx)
{
	int ready[2] = { -1, -1 }, status = 0, reaped = 0;
	pid_t child = -1;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_SYS(pipe(ready));
	child = fork();
	CHECK_SYS(child);
	if (child == 0) {
		close(ready[0]);
		int gfd = sm_group_open(ctx, ctx->groups[0]);
		if (gfd < 0)
			_exit(20);
		if (write(ready[1], "r", 1) != 1)
			_exit(21);
		ioctl(gfd, IOCTL_SLEEP);
		_exit(22); /* woken: the parent did not kill us in time */
	}
	close(ready[1]);
	ready[1] = -1;

	struct pollfd p = { .fd = ready[0], .events = POLLIN };
	char c;
	CHECK(poll(&p, 1, WAIT_MS) == 1 && read(ready[0], &c, 1) == 1,
	      "child did not open the group within %d ms", WAIT_MS);
	/* The child is single-threaded: its pid is the sleeping task. */
	if (sm_wait_in_ioctl(ctx, child, IOCTL_SLEEP, NULL, WAIT_MS) != 0)
		goto out;
	CHECK(waitpid(child, &status, WNOHANG) == 0,
	      "sleeping child exited by itself (status 0x%x)", status);

	CHECK_SYS(kill(child, SIGKILL));
	double end = sm_now_ms() + WAIT_MS;
	while (sm_now_ms() < end) {
		if (waitpid(child, &status, WNOHANG) == child) {
			reaped = 1;
			break;
		}
		sm_sleep_ms(5);
	}
	CHECK(reaped, "child sleeping in IOCTL_SLEEP still alive %d ms after SIGKILL "
	      "(the daemon never answered the interrupt)", WAIT_MS);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "child ended with status 0x%x, expected death by SIGKILL", status);
	child = -1;

	/* The dead sleeper left nothing on the group. */
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	close(ready[0]);
	close(fd);
	return SM_PASS;
out:
	if (child > 0 && !reaped) {
		kill(child, SIGKILL);
		ioctl(fd, IOCTL_AWAKE);
	}
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	close(fd);
	return SM_FAIL;
}

/* Sleepers must not hold the daemon's request threads: with more sleepers
 * than any sane thread pool, the group and other groups keep working, and
 * AWAKE wakes them all.  A request stuck behind the sleepers never returns:
 * the runner's deadline for the test reports that ("timed out"). */
#define MANY 16

enum sm_result test_barrier_many_sleepers(struct sm_ctx *ctx)
{
	static struct sleeper s[MANY];
	char buf[16];
	int started = 0, other = -1, fd = sm_group_fresh(ctx, 0);
	long woken;

	if (fd < 0)
		return SM_FAIL;
	other = sm_group_fresh(ctx, 1);
	if (other < 0)
		goto out;
	for (; started < MANY; started++)
		if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
			goto out;
	for (int i = 0; i < MANY; i++)
		if (wait_asleep(ctx, &s[i]) != 0)
			goto out;
	CHECK(count_done(s, MANY) == 0, "IOCTL_SLEEP returned without AWAKE");

	CHECK_RET(write(fd, "a", 1), 1);
	CHECK_RET(read(fd, buf, sizeof buf), 1);
	CHECK_RET(write(other, "b", 1), 1);
	CHECK_RET(read(other, buf, sizeof buf), 1);
	CHECK_RET(ioctl(other, IOCTL_AWAKE), 0);
	CHECK(count_done(s, MANY) == 0, "requests on the group woke a sleeper");

	woken = awake_until(ctx, fd, s, MANY, MANY);
	if (woken < 0)
		goto out;
	CHECK(woken == MANY, "AWAKE counted %ld sleepers in all, expected %d "
	      "(%d returned)", woken, MANY, count_done(s, MANY));
	int left = wait_sleepers(s, MANY, WAIT_MS);
	CHECK(left == 0, "%d of %d sleepers still blocked after AWAKE counted them",
	      left, MANY);
	for (int i = 0; i < MANY; i++)
		CHECK(s[i].ret == 0, "sleeper %d returned %d (%s)", i, s[i].ret,
		      sm_errname(s[i].err));
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	for (int i = 0; i < MANY; i++)
		close(s[i].fd);
	close(other);
	close(fd);
	return SM_PASS;
out:
	for (int tries = 0; tries < 20 && count_done(s, started) < started; tries++) {
		ioctl(fd, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	if (other >= 0)
		close(other);
	close(fd);
	return SM_FAIL;
}

/* Signals racing AWAKE: whatever the interleaving, every sleeper returns 0
 * or EINTR, the AWAKE counts add up to exactly the sleepers that returned 0
 * (none counted twice, none woken uncounted), and nothing is left behind. */
#define RACE_ROUNDS 20
#define RACE_SLEEPERS 4

enum sm_result test_barrier_signal_awake_race(struct sm_ctx *ctx)
{
	static struct sleeper s[RACE_SLEEPERS];
	struct sigaction sa;
	int started = 0, fd = sm_group_fresh(ctx, 0);
	unsigned rnd = 12345;

	if (fd < 0)
		return SM_FAIL;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));

	for (int round = 0; round < RACE_ROUNDS; round++) {
		long counted = 0, zeros = 0, eintr = 0;
		for (started = 0; started < RACE_SLEEPERS; started++)
			if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
				goto out;
		/* A random head start: jitter to vary the interleaving, not a
		 * wait for anything (every outcome is checked below). */
		rnd = rnd * 1103515245u + 12345u;
		sm_sleep_ms(5 + (rnd >> 16) % 40);
		pthread_kill(s[0].thread, SIGUSR1);
		pthread_kill(s[1].thread, SIGUSR1);
		int r = ioctl(fd, IOCTL_AWAKE);
		CHECK(r >= 0, "round %d: AWAKE failed (%s)", round, strerror(errno));
		counted += r;
		double end = sm_now_ms() + WAIT_MS;
		while (count_done(s, RACE_SLEEPERS) < RACE_SLEEPERS &&
		       sm_now_ms() < end) {
			sm_sleep_ms(20);
			r = ioctl(fd, IOCTL_AWAKE);
			CHECK(r >= 0, "round %d: AWAKE failed (%s)", round, strerror(errno));
			counted += r;
		}
		CHECK(wait_sleepers(s, RACE_SLEEPERS, 100) == 0,
		      "round %d: sleepers still blocked after %d ms of AWAKEs", round,
		      WAIT_MS);
		started = 0;
		for (int i = 0; i < RACE_SLEEPERS; i++) {
			close(s[i].fd);
			if (s[i].ret == 0)
				zeros++;
			else if (s[i].ret == -1 && s[i].err == EINTR)
				eintr++;
			else
				CHECK(0, "round %d: sleeper %d returned %d (%s)", round, i,
				      s[i].ret, sm_errname(s[i].err));
		}
		CHECK(counted == zeros,
		      "round %d: AWAKE counted %ld sleepers but %ld returned 0 "
		      "(%ld EINTR)", round, counted, zeros, eintr);
		CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	}
	close(fd);
	return SM_PASS;
out:
	for (int tries = 0; tries < 20 && count_done(s, started) < started; tries++) {
		ioctl(fd, IOCTL_AWAKE);
		sm_sleep_ms(100);
	}
	close(fd);
	return SM_FAIL;
}
