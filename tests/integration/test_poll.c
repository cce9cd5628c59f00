/*
 * test_poll.c - poll() on a group: POLLIN means "a read now returns a
 * message"; a blocked poll wakes when a message is written, when a delayed
 * message matures and when a flush publishes.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client.h"

/* Bound of the waits on a condition (only reached when something is
 * broken): a blocked poll() has no timeout of its own, so a missing
 * notification shows as a poll that has not returned after this long. */
#define WAIT_MS 10000
/* The delay of the maturing case: long enough that the poller is usually
 * asleep in poll() before the message matures (if not, poll returns at
 * once, which is checked the same way). */
#define MATURE_MS 1500

enum sm_result test_poll_empty_then_write(struct sm_ctx *ctx)
{
	char buf[16];
	struct pollfd p;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 0));
	CHECK(!(p.revents & POLLIN), "POLLIN set on an empty group (revents 0x%x)",
	      p.revents);
	CHECK_RET(write(fd, "hello", 5), 5);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK_RET(poll(&p, 1, 0), 1);
	CHECK(p.revents & POLLIN, "POLLIN not set with a message queued (revents 0x%x)",
	      p.revents);
	CHECK_RET(read(fd, buf, sizeof buf), 5);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 0));
	CHECK(!(p.revents & POLLIN), "POLLIN still set after the only message was read "
	      "(revents 0x%x)", p.revents);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}

struct poller {
	pthread_t thread;
	int fd;
	int ret;
	int err;
	short revents;
	double returned_at;
	atomic_int tid; /* set right before poll() */
	atomic_int done;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

	atomic_store(&p->tid, (int)gettid());
	errno = 0;
	p->ret = poll(&pfd, 1, -1);
	p->err = errno;
	p->revents = pfd.revents;
	p->returned_at = sm_now_ms();
	atomic_store(&p->done, 1);
	return NULL;
}

/* Starts a poller and waits until it is asleep in poll() (past the
 * daemon's answer to the POLL request), or has returned. */
static int start_poller(struct sm_ctx *ctx, struct poller *p, int fd)
{
	double end = sm_now_ms() + WAIT_MS;

	memset(p, 0, sizeof *p);
	p->fd = fd;
	atomic_init(&p->tid, 0);
	atomic_init(&p->done, 0);
	int e = pthread_create(&p->thread, NULL, poller_main, p);
	if (e != 0) {
		errno = e;
		sm_fail(ctx, 1, "pthread_create failed");
		return -1;
	}
	while (!atomic_load(&p->tid)) {
		if (sm_now_ms() > end) {
			sm_fail(ctx, 0, "poll thread did not start within %d ms", WAIT_MS);
			return -1;
		}
		sm_sleep_ms(1);
	}
	return sm_wait_in_poll(ctx, atomic_load(&p->tid), &p->done, WAIT_MS) < 0
		? -1 : 0;
}

/* Waits for the poller to return, at most WAIT_MS; joins it.  0 or -1. */
static int join_poller(struct poller *p)
{
	double end = sm_now_ms() + WAIT_MS;
	while (!atomic_load(&p->done) && sm_now_ms() < end)
		sm_sleep_ms(2);
	if (!atomic_load(&p->done))
		return -1;
	pthread_join(p->thread, NULL);
	return 0;
}

/* what: 0 = a plain write, 1 = a delayed message maturing, 2 = a flush.
 * The only time check is a lower bound that holds by construction: POLLIN
 * for a delayed message never comes before its delay. */
static enum sm_result poll_wakes(struct sm_ctx *ctx, int what)
{
	static const char *names[] = { "a write", "a delayed message maturing",
				       "a flush" };
	char buf[16];
	/* static: a poller that never returns outlives this frame */
	static struct poller p;
	int started = 0, pfd = -1, fd = sm_group_fresh(ctx, 0);
	double t_event = 0;

	if (fd < 0)
		return SM_FAIL;
	/* The poller is another client (on the peer host, if any). */
	if ((pfd = sm_group_other(ctx, 0)) < 0)
		goto out;
	if (what == 1)
		CHECK_RET(sm_set_delay(fd, MATURE_MS), 0);
	if (what == 2)
		CHECK_RET(sm_set_delay(fd, 60000), 0);
	if (what != 0) {
		struct pollfd now = { .fd = fd, .events = POLLIN };
		t_event = sm_now_ms() + (what == 1 ? MATURE_MS : 0);
		CHECK_RET(write(fd, "hello", 5), 5);
		/* A pending delayed message is not readable yet. */
		CHECK_SYS(poll(&now, 1, 0));
		double at = sm_now_ms();
		CHECK(!(now.revents & POLLIN) || (what == 1 && at >= t_event),
		      "POLLIN set with only a delayed message pending (revents 0x%x, "
		      "%.0f ms before it matures)", now.revents, t_event - at);
	}
	if (start_poller(ctx, &p, pfd) != 0)
		goto out;
	started = 1;
	/* A write or flush has not happened yet; a maturing message may have. */
	CHECK(what == 1 || !atomic_load(&p.done),
	      "poll returned %d revents 0x%x before %s", p.ret, p.revents,
	      names[what]);
	if (what == 0) {
		t_event = sm_now_ms();
		CHECK_RET(write(fd, "hello", 5), 5);
	} else if (what == 2) {
		t_event = sm_now_ms();
		CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	}
	started = 0; /* joined below, or left blocked: never joined twice */
	CHECK(join_poller(&p) == 0, "poll did not return within %d ms of %s",
	      WAIT_MS, names[what]);
	CHECK(p.ret == 1 && (p.revents & POLLIN),
	      "poll after %s returned %d revents 0x%x (%s)", names[what], p.ret,
	      p.revents, sm_errname(p.err));
	if (what == 1)
		CHECK(p.returned_at - t_event > -10,
		      "poll reported POLLIN %.0f ms before the delayed message matured",
		      t_event - p.returned_at);
	CHECK_RET(read(pfd, buf, sizeof buf), 5);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(pfd);
	close(fd);
	return SM_PASS;
out:
	if (started && !atomic_load(&p.done)) {
		/* Release the poller so it can be joined. */
		if (write(fd, "x", 1) == 1)
			join_poller(&p);
	}
	if (pfd >= 0)
		close(pfd);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_poll_wakes_on_write(struct sm_ctx *ctx)
{
	return poll_wakes(ctx, 0);
}

enum sm_result test_poll_wakes_on_delayed(struct sm_ctx *ctx)
{
	return poll_wakes(ctx, 1);
}

enum sm_result test_poll_wakes_on_flush(struct sm_ctx *ctx)
{
	return poll_wakes(ctx, 2);
}
