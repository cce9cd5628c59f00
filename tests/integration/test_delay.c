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

/* A 1000 ms delay (long enough that a loaded machine cannot blur "at once"
 * and "after the delay"): the write returns at once, the message is not
 * readable at ~50 ms, and is readable no earlier than 1000 ms and by 3 s. */
#define DELAY_MS 1000

enum sm_result test_delay_write(struct sm_ctx *ctx)
{
	char buf[64];
	double t0, took;
	ssize_t r;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, DELAY_MS), 0);
	t0 = sm_now_ms();
	CHECK_RET(write(fd, "delayed", 7), 7);
	took = sm_now_ms() - t0;
	CHECK(took < DELAY_MS / 2, "delayed write took %.0f ms, must return at once",
	      took);

	sm_sleep_ms(50);
	r = read(fd, buf, sizeof buf);
	took = sm_now_ms() - t0;
	CHECK(r == 0 || took >= DELAY_MS,
	      "read %.0f ms after a write delayed by %d ms returned %zd, expected 0",
	      took, DELAY_MS, r);
	CHECK(r == 0, "machine too slow: the read meant for ~50 ms returned after "
	      "%.0f ms", took);

	r = sm_read_within(fd, buf, sizeof buf, DELAY_MS + 2000);
	took = sm_now_ms() - t0;
	CHECK(r == 7, "delayed message not readable within %d ms (read %zd)",
	      DELAY_MS + 2000, r);
	CHECK(memcmp(buf, "delayed", 7) == 0, "delayed message corrupted");
	CHECK(took >= DELAY_MS - 5, "delayed message readable after %.0f ms, "
	      "delay is %d", took, DELAY_MS);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
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
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 100), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(want, sizeof want, "m%d", i);
		CHECK_RET(write(fd, want, strlen(want)), (long)strlen(want));
	}
	for (int i = 0; i < 10; i++) {
		snprintf(want, sizeof want, "m%d", i);
		memset(buf, 0, sizeof buf);
		ssize_t r = sm_read_within(fd, buf, sizeof buf, 3000);
		CHECK(r == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)r) == 0,
		      "delayed message %d: read %zd \"%.10s\", expected \"%s\"",
		      i, r, buf, want);
	}
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
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

enum sm_result test_delay_revoke(struct sm_ctx *ctx)
{
	char buf[64];
	ssize_t r;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0); /* none pending */
	CHECK_RET(write(fd, "immediate", 9), 9);
	CHECK_RET(sm_set_delay(fd, 300), 0);
	CHECK_RET(write(fd, "r1", 2), 2);
	CHECK_RET(write(fd, "r2", 2), 2);
	CHECK_RET(write(fd, "r3", 2), 2);
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	sm_sleep_ms(800);
	/* Revoking leaves published messages alone. */
	CHECK_RET(read(fd, buf, sizeof buf), 9);
	CHECK(memcmp(buf, "immediate", 9) == 0, "published message corrupted");
	CHECK_RET(read(fd, buf, sizeof buf), 0);

	/* The group still delays normally afterwards. */
	CHECK_RET(write(fd, "after", 5), 5);
	r = sm_read_within(fd, buf, sizeof buf, 3000);
	CHECK(r == 5 && memcmp(buf, "after", 5) == 0,
	      "delayed message after a revoke: read %zd", r);
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* flush is fsync() or IOCTL_FLUSH_DELAYED_MESSAGES. */
static enum sm_result flush_publishes(struct sm_ctx *ctx, int use_fsync)
{
	static const char *msgs[] = { "first", "second", "third" };
	char buf[64];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	if (use_fsync)
		CHECK_RET(fsync(fd), 0); /* nothing pending */
	else
		CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	for (int i = 0; i < 3; i++)
		CHECK_RET(write(fd, msgs[i], strlen(msgs[i])), (long)strlen(msgs[i]));
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	if (use_fsync)
		CHECK_RET(fsync(fd), 0);
	else
		CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf, 0, sizeof buf);
		errno = 0;
		ssize_t r = read(fd, buf, sizeof buf);
		CHECK(r == (ssize_t)strlen(msgs[i]) && memcmp(buf, msgs[i], (size_t)r) == 0,
		      "read %d right after the flush: %zd \"%.10s\", expected \"%s\" (%s)",
		      i, r, buf, msgs[i], strerror(errno));
	}
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	/* Nothing is pending any more, so the delay can change. */
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_delay_flush_ioctl(struct sm_ctx *ctx)
{
	return flush_publishes(ctx, 0);
}

/* On CUSE the kernel has no fsync for the device: EINVAL, and the pending
 * message stays pending (the fsync shim exists for that). */
enum sm_result test_delay_fsync(struct sm_ctx *ctx)
{
	char buf[64];
	int fd;

	if (ctx->transport == SM_FUSE)
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
	double t0 = sm_now_ms();
	CHECK_ERR(write(fd, buf, sizeof buf), EPERM);
	CHECK_ERR(write(fd, buf, 1), EPERM);
	CHECK(sm_now_ms() - t0 < 1000, "refused delayed writes took %.0f ms",
	      sm_now_ms() - t0);

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
	fd2 = sm_group_open(ctx, ctx->groups[0]);
	if (fd2 < 0)
		goto out;
	CHECK_RET(write(fd2, "pending", 7), 7);
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

/* The largest delay (UINT_MAX ms, about 49.7 days) must not overflow into
 * "now" or into the past. */
enum sm_result test_delay_huge(struct sm_ctx *ctx)
{
	char buf[64];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(sm_set_delay(fd, 0xFFFFFFFFu), 0);
	CHECK_RET(write(fd, "later", 5), 5);
	CHECK_ERR(sm_set_delay(fd, 0x80000000u), EPERM); /* pending */
	sm_sleep_ms(300);
	CHECK(read(fd, buf, sizeof buf) == 0,
	      "a message delayed by UINT_MAX ms was published within 300 ms");
	CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(read(fd, buf, sizeof buf), 5);
	CHECK_RET(sm_set_delay(fd, 0x80000000u), 0);
	CHECK_RET(write(fd, "later", 5), 5);
	sm_sleep_ms(300);
	CHECK(read(fd, buf, sizeof buf) == 0,
	      "a message delayed by 2^31 ms was published within 300 ms");
	CHECK_RET(ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES), 0);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
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
