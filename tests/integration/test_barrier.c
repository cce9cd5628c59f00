/*
 * test_barrier.c - IOCTL_SLEEP / IOCTL_AWAKE: counts, independence of
 * groups, a sleeper ended by a signal (EINTR) or by SIGKILL leaves nothing
 * behind.
 *
 * A sleeper cannot be observed "asleep in the daemon"; the tests give the
 * sleepers a settling time (longer on CUSE, which runs under emulation) and
 * check that none has returned before waking them.
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

struct sleeper {
	pthread_t thread;
	int fd;
	int ret;
	int err;
	atomic_int done;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	errno = 0;
	s->ret = ioctl(s->fd, IOCTL_SLEEP);
	s->err = errno;
	atomic_store(&s->done, 1);
	return NULL;
}

static unsigned settle_ms(const struct sm_ctx *ctx)
{
	return ctx->transport == SM_CUSE ? 2000 : 1000;
}

static int start_sleeper(struct sm_ctx *ctx, struct sleeper *s, unsigned desc)
{
	memset(s, 0, sizeof *s);
	atomic_init(&s->done, 0);
	s->fd = sm_group_open(ctx, desc);
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

enum sm_result test_barrier_awake_counts(struct sm_ctx *ctx)
{
	struct sleeper s[3];
	int started = 0, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	for (; started < 3; started++)
		if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
			goto out;
	sm_sleep_ms(settle_ms(ctx));
	CHECK(count_done(s, 3) == 0, "IOCTL_SLEEP returned without AWAKE (ret %d, %s)",
	      s[0].ret, sm_errname(s[0].err));
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 3);
	int left = wait_sleepers(s, 3, 2000);
	CHECK(left == 0, "%d of 3 sleepers still blocked 2 s after AWAKE", left);
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

enum sm_result test_barrier_groups_independent(struct sm_ctx *ctx)
{
	struct sleeper s;
	int started = 0, a = -1, b = -1;

	a = sm_group_fresh(ctx, 0);
	if (a < 0)
		return SM_FAIL;
	b = sm_group_fresh(ctx, 1);
	if (b < 0)
		goto out;
	if (start_sleeper(ctx, &s, ctx->groups[0]) != 0)
		goto out;
	started = 1;
	sm_sleep_ms(settle_ms(ctx));
	CHECK(!atomic_load(&s.done), "IOCTL_SLEEP returned without AWAKE");
	CHECK_RET(ioctl(b, IOCTL_AWAKE), 0);
	sm_sleep_ms(200);
	CHECK(!atomic_load(&s.done), "AWAKE on group %u woke a sleeper of group %u",
	      ctx->groups[1], ctx->groups[0]);
	CHECK_RET(ioctl(a, IOCTL_AWAKE), 1);
	CHECK(wait_sleepers(&s, 1, 2000) == 0, "sleeper still blocked 2 s after AWAKE");
	CHECK(s.ret == 0, "sleeper returned %d (%s)", s.ret, sm_errname(s.err));
	close(s.fd);
	close(a);
	close(b);
	return SM_PASS;
out:
	for (int tries = 0; started && tries < 20 && !atomic_load(&s.done); tries++) {
		ioctl(a, IOCTL_AWAKE);
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

enum sm_result test_barrier_signal_eintr(struct sm_ctx *ctx)
{
	struct sleeper s[2];
	struct sigaction sa;
	int started = 0, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = 0; /* no SA_RESTART: the ioctl must come back EINTR */
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));

	for (; started < 2; started++)
		if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
			goto out;
	sm_sleep_ms(settle_ms(ctx));
	CHECK(count_done(s, 2) == 0, "IOCTL_SLEEP returned without AWAKE");

	int e = pthread_kill(s[0].thread, SIGUSR1);
	CHECK(e == 0, "pthread_kill failed: %s", strerror(e));
	CHECK(wait_sleepers(&s[0], 1, 2000) == 0,
	      "sleeper still blocked 2 s after a signal (interrupt not handled)");
	CHECK(s[0].ret == -1 && s[0].err == EINTR,
	      "interrupted sleeper returned %d errno %s, expected -1 EINTR",
	      s[0].ret, sm_errname(s[0].err));
	sm_sleep_ms(100);
	CHECK(!atomic_load(&s[1].done), "the other sleeper returned too (ret %d, %s)",
	      s[1].ret, sm_errname(s[1].err));

	/* Only the sleeper that is still there is counted. */
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 1);
	CHECK(wait_sleepers(&s[1], 1, 2000) == 0, "sleeper still blocked 2 s after AWAKE");
	CHECK(s[1].ret == 0, "sleeper returned %d (%s)", s[1].ret, sm_errname(s[1].err));
	CHECK_RET(ioctl(fd, IOCTL_AWAKE), 0);
	close(s[0].fd);
	close(s[1].fd);
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
	CHECK(poll(&p, 1, 5000) == 1 && read(ready[0], &c, 1) == 1,
	      "child did not open the group within 5 s");
	sm_sleep_ms(settle_ms(ctx));
	CHECK(waitpid(child, &status, WNOHANG) == 0,
	      "sleeping child exited by itself (status 0x%x)", status);

	CHECK_SYS(kill(child, SIGKILL));
	double end = sm_now_ms() + 3000;
	while (sm_now_ms() < end) {
		if (waitpid(child, &status, WNOHANG) == child) {
			reaped = 1;
			break;
		}
		sm_sleep_ms(5);
	}
	CHECK(reaped, "child sleeping in IOCTL_SLEEP still alive 3 s after SIGKILL "
	      "(the daemon never answered the interrupt)");
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
 * one AWAKE wakes them all. */
#define MANY 16

enum sm_result test_barrier_many_sleepers(struct sm_ctx *ctx)
{
	static struct sleeper s[MANY];
	char buf[16];
	int started = 0, other = -1, fd = sm_group_fresh(ctx, 0);
	double t0;

	if (fd < 0)
		return SM_FAIL;
	other = sm_group_fresh(ctx, 1);
	if (other < 0)
		goto out;
	for (; started < MANY; started++)
		if (start_sleeper(ctx, &s[started], ctx->groups[0]) != 0)
			goto out;
	sm_sleep_ms(settle_ms(ctx));
	CHECK(count_done(s, MANY) == 0, "IOCTL_SLEEP returned without AWAKE");

	t0 = sm_now_ms();
	CHECK_RET(write(fd, "a", 1), 1);
	CHECK_RET(read(fd, buf, sizeof buf), 1);
	CHECK_RET(write(other, "b", 1), 1);
	CHECK_RET(read(other, buf, sizeof buf), 1);
	CHECK_RET(ioctl(other, IOCTL_AWAKE), 0);
	CHECK(sm_now_ms() - t0 < 2000, "with %d sleepers, 5 requests took %.0f ms",
	      MANY, sm_now_ms() - t0);

	CHECK_RET(ioctl(fd, IOCTL_AWAKE), MANY);
	int left = wait_sleepers(s, MANY, 3000);
	CHECK(left == 0, "%d of %d sleepers still blocked 3 s after AWAKE", left, MANY);
	for (int i = 0; i < MANY; i++)
		CHECK(s[i].ret == 0, "sleeper %d returned %d (%s)", i, s[i].ret,
		      sm_errname(s[i].err));
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
		rnd = rnd * 1103515245u + 12345u;
		sm_sleep_ms(5 + (rnd >> 16) % 40);
		pthread_kill(s[0].thread, SIGUSR1);
		pthread_kill(s[1].thread, SIGUSR1);
		int r = ioctl(fd, IOCTL_AWAKE);
		CHECK(r >= 0, "round %d: AWAKE failed (%s)", round, strerror(errno));
		counted += r;
		double end = sm_now_ms() + 5000;
		while (count_done(s, RACE_SLEEPERS) < RACE_SLEEPERS &&
		       sm_now_ms() < end) {
			sm_sleep_ms(20);
			r = ioctl(fd, IOCTL_AWAKE);
			CHECK(r >= 0, "round %d: AWAKE failed (%s)", round, strerror(errno));
			counted += r;
		}
		CHECK(wait_sleepers(s, RACE_SLEEPERS, 100) == 0,
		      "round %d: sleepers still blocked after 5 s of AWAKEs", round);
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
