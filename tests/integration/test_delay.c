/*
 * test_delay.c - delayed writes: SET_SEND_DELAY, maturing, REVOKE, flush
 * (fsync and IOCTL_FLUSH_DELAYED_MESSAGES), storage reserved at write time.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client.h"

/* Bound of the waits on a condition; only reached when something is
 * broken.  No check below bounds how long anything took: the only time
 * checks are lower bounds that hold by construction (a delayed message is
 * never readable before its delay, measured from a time taken before the
 * write). */
#define WAIT_MS 10000
/* A delay longer than the runner's bound on any test here: "not readable
 * yet" right after such a write holds whatever the machine's speed. */
#define LONG_DELAY_MS 60000u

/* Reads until a message arrives or WAIT_MS pass; returns the read() result
 * (0 if nothing arrived) and in *took the ms from t0 to that read's end. */
static ssize_t read_after_delay(int fd, void *buf, size_t size, double t0,
				double *took)
{
	double end = sm_now_ms() + WAIT_MS;
	ssize_t r;

	for (;;) {
		r = read(fd, buf, size);
		*took = sm_now_ms() - t0;
		if (r != 0 || sm_now_ms() > end)
			return r;
		sm_sleep_ms(1);
	}
}

/* The short delay of the tests that wait for a message to mature. */
#define DELAY_MS 300

/* The write returns at once: with LONG_DELAY_MS, a write that waited for
 * its delay would hit the runner's bound on this test ("timed out"). */
enum sm_result test_delay_write(struct sm_ctx *ctx)
{
	char buf[64];
	double t0, took;
	ssize_t r;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	/* A short delay matures by itself, never before the delay. */
	CHECK_RET(sm_set_delay(fd, DELAY_MS), 0);
	t0 = sm_now_ms();
	CHECK_RET(write(fd, "delayed", 7), 7);
	r = read_after_delay(fd, buf, sizeof buf, t0, &took);
	CHECK(r == 7, "delayed message not readable within %d ms (read %zd)",
	      WAIT_MS, r);
	CHECK(took >= DELAY_MS, "delayed message readable after %.0f ms, "
	      "delay is %d", took, DELAY_MS);
	CHECK(memcmp(buf, "delayed", 7) == 0, "delayed message corrupted");
	CHECK_RET(read(fd, buf, sizeof buf), 0);

	/* (Last: a shorter delay after this one waits for its timer on main,
	 * see core's DISABLED_ShorterDelay* tests.) */
	CHECK_RET(sm_set_delay(fd, LONG_DELAY_MS), 0);
	CHECK_RET(write(fd, "held", 4), 4);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_delay_order(struct sm_ctx *ctx)
{
	char buf[64], want[16];
	int rd = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	if ((rd = sm_group_other(ctx, 0)) < 0)
		goto out;
	double t0 = sm_now_ms(), took;
	CHECK_RET(sm_set_delay(fd, 100), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(want, sizeof want, "m%d", i);
		CHECK_RET(write(fd, want, strlen(want)), (long)strlen(want));
	}
	for (int i = 0; i < 10; i++) {
		snprintf(want, sizeof want, "m%d", i);
		memset(buf, 0, sizeof buf);
		ssize_t r = read_after_delay(rd, buf, sizeof buf, t0, &took);
		CHECK(r <= 0 || took >= 100, "delayed message %d readable after %.0f ms, "
		      "delay is 100", i, took);
		CHECK(r == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)r) == 0,
		      "delayed message %d: read %zd \"%.10s\", expected \"%s\"",
		      i, r, buf, want);
	}
	CHECK_RET(read(rd, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(rd);
	close(fd);
	return SM_PASS;
out:
	if (rd >= 0)
		close(rd);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_delay_set_pending(struct sm_ctx *ctx)
{
	char buf[64];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 5000), 0);
	CHECK_RET(sm_set_delay(fd, 6000), 0); /* nothing pending yet */
	CHECK_RET(write(fd, "pending", 7), 7);
	CHECK_ERR(sm_set_delay(fd, 0), EPERM);
	CHECK_ERR(sm_set_delay(fd, 100), EPERM);
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* A revoke that provably came before the delayed messages' deadline (the
 * round took less than the delay) must leave none of them; a round that
 * took longer proves nothing and is repeated with a longer delay.  Then a
 * message written with the same delay is due after all the revoked ones,
 * so once it is out, any survivor would have come out before it. */
enum sm_result test_delay_revoke(struct sm_ctx *ctx)
{
	char buf[64];
	ssize_t r;
	unsigned delay = DELAY_MS;
	double t0, took;
	int other = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	if ((other = sm_group_other(ctx, 0)) < 0)
		goto out;
	CHECK_RET(ioctl(other, IOCTL_REVOKE_DELAYED_MESSAGES), 0); /* none pending */
	for (;; delay *= 2) {
		CHECK(delay <= 5000, "no write-write-write-revoke round took less "
		      "than its delay, up to %u ms", delay / 2);
		CHECK_RET(sm_set_delay(fd, 0), 0);
		while (read(fd, buf, sizeof buf) > 0)
			;
		CHECK_RET(write(fd, "immediate", 9), 9);
		CHECK_RET(sm_set_delay(fd, delay), 0);
		t0 = sm_now_ms();
		CHECK_RET(write(fd, "r1", 2), 2);
		CHECK_RET(write(fd, "r2", 2), 2);
		CHECK_RET(write(fd, "r3", 2), 2);
		CHECK_RET(ioctl(other, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
		if (sm_now_ms() - t0 < delay)
			break;
	}
	CHECK_RET(sm_set_delay(fd, delay), 0); /* nothing pending any more */

	/* Revoking leaves published messages alone. */
	CHECK_RET(read(fd, buf, sizeof buf), 9);
	CHECK(memcmp(buf, "immediate", 9) == 0, "published message corrupted");

	/* The group still delays normally afterwards, and no revoked message
	 * comes out before the later one. */
	t0 = sm_now_ms();
	CHECK_RET(write(fd, "after", 5), 5);
	r = read_after_delay(fd, buf, sizeof buf, t0, &took);
	CHECK(r == 5 && memcmp(buf, "after", 5) == 0,
	      "first message after a revoke: read %zd \"%.*s\", expected \"after\"",
	      r, r > 0 ? (int)r : 0, buf);
	CHECK(took >= delay, "delayed message readable after %.0f ms, delay is %u",
	      took, delay);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(other);
	close(fd);
	return SM_PASS;
out:
	if (other >= 0)
		close(other);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* flush is fsync() or IOCTL_FLUSH_DELAYED_MESSAGES. */
static enum sm_result flush_publishes(struct sm_ctx *ctx, int use_fsync)
{
	static const char *msgs[] = { "first", "second", "third" };
	char buf[64];
	int other = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	if ((other = sm_group_other(ctx, 0)) < 0)
		goto out;
	if (use_fsync)
		CHECK_RET(fsync(fd), 0); /* nothing pending */
	else
		CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	for (int i = 0; i < 3; i++)
		CHECK_RET(write(fd, msgs[i], strlen(msgs[i])), (long)strlen(msgs[i]));
	CHECK_RET(read(other, buf, sizeof buf), 0);
	if (use_fsync)
		CHECK_RET(fsync(other), 0);
	else
		CHECK_RET(ioctl(other, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf, 0, sizeof buf);
		errno = 0;
		ssize_t r = read(other, buf, sizeof buf);
		CHECK(r == (ssize_t)strlen(msgs[i]) && memcmp(buf, msgs[i], (size_t)r) == 0,
		      "read %d right after the flush: %zd \"%.10s\", expected \"%s\" (%s)",
		      i, r, buf, msgs[i], strerror(errno));
	}
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	/* Nothing is pending any more, so the delay can change. */
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(other);
	close(fd);
	return SM_PASS;
out:
	if (other >= 0)
		close(other);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_delay_flush_ioctl(struct sm_ctx *ctx)
{
	return flush_publishes(ctx, 0);
}

/* On CUSE the kernel has no fsync for the device: EINVAL, and the pending
 * message stays pending.  The fsync shim (alone or in libsynchmess-fast.so)
 * exists for that: with it, fsync flushes on CUSE as on FUSE. */
enum sm_result test_delay_fsync(struct sm_ctx *ctx)
{
	char buf[64];
	int fd;

	if (ctx->transport == SM_FUSE || sm_shim_preloaded("fsync"))
		return flush_publishes(ctx, 1);
	fd = sm_group_fresh(ctx, 0);
	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	CHECK_RET(write(fd, "x", 1), 1);
	CHECK_ERR(fsync(fd), EINVAL);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* A delayed write takes its storage when it is written, so it can fail at
 * once instead of being dropped when its timer fires. */
enum sm_result test_delay_storage_reserved(struct sm_ctx *ctx)
{
	char buf[SM_DEFAULT_MAX_MESSAGE];
	/* Room for exactly four messages of SM_DEFAULT_MAX_MESSAGE bytes. */
	struct synchmess_params saved = { 0 }, small = { 0, 4 * SM_CHARGE(SM_DEFAULT_MAX_MESSAGE) },
				now = { 0 };
	int restore = 0, fd = -1, m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &saved), 0);
	errno = 0;
	if (ioctl(m, IOCTL_SET_PARAMS, &small) != 0) {
		if (errno == EPERM && geteuid() != 0) {
			snprintf(ctx->reason, sizeof ctx->reason,
				 "IOCTL_SET_PARAMS needs root");
			close(m);
			return SM_SKIP;
		}
		sm_fail(ctx, 1, "IOCTL_SET_PARAMS {0, %llu} failed", small.max_storage_size);
		goto out;
	}
	restore = 1;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &now), 0);
	CHECK(now.max_storage_size == small.max_storage_size &&
	      now.max_message_size == saved.max_message_size,
	      "after SET {0, 4 messages} GET reports {%llu, %llu}",
	      now.max_message_size, now.max_storage_size);

	fd = sm_group_fresh(ctx, 0);
	if (fd < 0)
		goto out;
	memset(buf, 'd', sizeof buf);
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	for (int i = 0; i < 4; i++)
		CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	/* Refused at once: a write that waited for room (60 s away) would hit
	 * the runner's bound on this test. */
	CHECK_ERR(write(fd, buf, sizeof buf), EPERM);
	CHECK_ERR(write(fd, buf, 1), EPERM);

	/* Revoking gives the space back. */
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);

	/* Published and delayed messages share the limit. */
	CHECK_RET(sm_set_delay(fd, 0), 0);
	CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_RET(write(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_ERR(write(fd, buf, 1), EPERM);

	/* Flushing a full reservation publishes everything, nothing lost. */
	CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	for (int i = 0; i < 4; i++)
		CHECK_RET(read(fd, buf, sizeof buf), (long)sizeof buf);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);

	CHECK_RET(ioctl(m, IOCTL_SET_PARAMS, &saved), 0);
	restore = 0;
	close(fd);
	close(m);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	if (restore)
		ioctl(m, IOCTL_SET_PARAMS, &saved);
	close(m);
	return SM_FAIL;
}

enum sm_result test_delay_back_to_zero(struct sm_ctx *ctx)
{
	char buf[64];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 200), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	CHECK_RET(write(fd, "now", 3), 3);
	CHECK_RET(read(fd, buf, sizeof buf), 3);
	CHECK(memcmp(buf, "now", 3) == 0, "message corrupted");
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* close() is not fsync: on FUSE every close sends FLUSH to the daemon, which
 * must not publish delayed messages (the module has no flush operation). */
enum sm_result test_delay_close_no_flush(struct sm_ctx *ctx)
{
	char buf[64];
	int fd2 = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	fd2 = sm_group_other(ctx, 0);
	if (fd2 < 0)
		goto out;
	CHECK_RET(write(fd2, "pending", 7), 7);
	/* close() waits for the daemon's answer to FLUSH (and, on CUSE, to
	 * RELEASE), so the check below needs no wait for FLUSH.  On FUSE the
	 * RELEASE is asynchronous and cannot be awaited: the pause gives a
	 * publish-on-release bug a chance to show; a correct daemon passes
	 * whatever the timing. */
	CHECK_SYS(close(fd2));
	fd2 = -1;
	sm_sleep_ms(100);
	CHECK(read(fd, buf, sizeof buf) == 0,
	      "closing a descriptor published a delayed message");
	CHECK_ERR(sm_set_delay(fd, 0), EPERM); /* still pending */
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	if (fd2 >= 0)
		close(fd2);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_delay_bad_pointer(struct sm_ctx *ctx)
{
	char buf[64];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_ERR(ioctl(fd, IOCTL_SET_SEND_DELAY, (void *)1), EFAULT);
	CHECK_ERR(ioctl(fd, IOCTL_SET_SEND_DELAY, (void *)0), EFAULT);
	/* The delay did not change: writes are still immediate. */
	CHECK_RET(write(fd, "now", 3), 3);
	CHECK_RET(read(fd, buf, sizeof buf), 3);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* Writes msg to fd (delayed by a huge delay) and checks it is not published
 * by the time a marker written right after it to mfd (delay DELAY_MS) has
 * matured: a deadline that overflowed into the past or the near future
 * would have fired first.  A condition, not a guessed pause. */
static int huge_not_published(struct sm_ctx *ctx, int fd, int mfd,
			      unsigned delay_ms)
{
	char buf[64];
	double t0 = sm_now_ms(), took;
	ssize_t r;

	if (write(fd, "later", 5) != 5) {
		sm_fail(ctx, 1, "delayed write failed");
		return -1;
	}
	if (write(mfd, "marker", 6) != 6) {
		sm_fail(ctx, 1, "marker write failed");
		return -1;
	}
	r = read_after_delay(mfd, buf, sizeof buf, t0, &took);
	if (r != 6 || took < DELAY_MS) {
		sm_fail(ctx, 0, "marker delayed by %d ms: read %zd after %.0f ms",
			DELAY_MS, r, took);
		return -1;
	}
	r = read(fd, buf, sizeof buf);
	if (r != 0) {
		sm_fail(ctx, 0, "a message delayed by %u ms was published within "
			"%.0f ms (read %zd)", delay_ms, took, r);
		return -1;
	}
	return 0;
}

/* The largest delay (UINT_MAX ms, about 49.7 days) must not overflow into
 * "now" or into the past. */
enum sm_result test_delay_huge(struct sm_ctx *ctx)
{
	char buf[64];
	int m = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	m = sm_group_fresh(ctx, 1);
	if (m < 0)
		goto out;
	CHECK_RET(sm_set_delay(m, DELAY_MS), 0);
	CHECK_RET(sm_set_delay(fd, 0xFFFFFFFFu), 0);
	if (huge_not_published(ctx, fd, m, 0xFFFFFFFFu) != 0)
		goto out;
	CHECK_ERR(sm_set_delay(fd, 0x80000000u), EPERM); /* pending */
	CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(read(fd, buf, sizeof buf), 5);
	CHECK_RET(sm_set_delay(fd, 0x80000000u), 0);
	if (huge_not_published(ctx, fd, m, 0x80000000u) != 0)
		goto out;
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	CHECK_RET(sm_set_delay(m, 0), 0);
	close(m);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	if (m >= 0) {
		sm_group_reset(ctx, m);
		close(m);
	}
	return SM_FAIL;
}

/* The delay belongs to one group. */
enum sm_result test_delay_per_group(struct sm_ctx *ctx)
{
	char buf[64];
	int b = -1, a = sm_group_fresh(ctx, 0);

	if (a < 0)
		return SM_FAIL;
	b = sm_group_fresh(ctx, 1);
	if (b < 0)
		goto out;
	CHECK_RET(sm_set_delay(a, 60000), 0);
	CHECK_RET(write(a, "late", 4), 4);
	CHECK_RET(write(b, "now", 3), 3);
	CHECK_RET(read(b, buf, sizeof buf), 3);
	CHECK_RET(read(a, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(b, 0), 0); /* b has nothing pending */
	CHECK_RET(ioctl(b, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(read(a, buf, sizeof buf), 0); /* flushing b left a alone */
	CHECK_RET(ioctl(b, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(ioctl(a, IOCTL_FLUSH_DELAYED_MESSAGES), 0); /* revoking b too */
	CHECK_RET(read(a, buf, sizeof buf), 4);
	CHECK_RET(sm_set_delay(a, 0), 0);
	close(a);
	close(b);
	return SM_PASS;
out:
	sm_group_reset(ctx, a);
	close(a);
	if (b >= 0) {
		sm_group_reset(ctx, b);
		close(b);
	}
	return SM_FAIL;
}
