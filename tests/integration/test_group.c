/*
 * test_group.c - messages on a group device: size limits, storage limit,
 * empty reads, FIFO order, short reads, message boundaries, unknown ioctls.
 *
 * "FIFO" here: messages written one after the other (each write returned
 * before the next started) to one group are read back in that order.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client.h"

enum sm_result test_group_write_too_big(struct sm_ctx *ctx)
{
	char buf[SM_DEFAULT_MAX_MESSAGE * 2];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	memset(buf, 'x', sizeof buf);
	CHECK_ERR(write(fd, buf, SM_DEFAULT_MAX_MESSAGE + 1), EPERM);
	CHECK_ERR(write(fd, buf, sizeof buf), EPERM);
	/* Nothing of the refused writes was queued. */
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}

enum sm_result test_group_write_max(struct sm_ctx *ctx)
{
	char out_buf[SM_DEFAULT_MAX_MESSAGE], in_buf[SM_DEFAULT_MAX_MESSAGE * 2];
	int rd = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0 || (rd = sm_group_other(ctx, 0)) < 0)
		goto out;
	sm_fill(out_buf, sizeof out_buf, 1);
	CHECK_RET(write(fd, out_buf, sizeof out_buf), SM_DEFAULT_MAX_MESSAGE);
	CHECK_RET(read(rd, in_buf, sizeof in_buf), SM_DEFAULT_MAX_MESSAGE);
	CHECK(memcmp(in_buf, out_buf, sizeof out_buf) == 0,
	      "1024-byte message came back corrupted");
	CHECK_RET(read(rd, in_buf, sizeof in_buf), 0);
	close(rd);
	close(fd);
	return SM_PASS;
out:
	if (rd >= 0)
		close(rd);
	if (fd >= 0)
		close(fd);
	return SM_FAIL;
}

enum sm_result test_group_storage_limit(struct sm_ctx *ctx)
{
	const unsigned n = SM_DEFAULT_MAX_STORAGE / SM_CHARGE(SM_DEFAULT_MAX_MESSAGE);
	/* What is left after n full messages, taken by one filler message. */
	const unsigned filler = SM_DEFAULT_MAX_STORAGE - n * SM_CHARGE(SM_DEFAULT_MAX_MESSAGE) -
				SYNCHMESS_MESSAGE_OVERHEAD;
	char buf[SM_DEFAULT_MAX_MESSAGE * 2];
	unsigned i;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	for (i = 0; i < n; i++) {
		memset(buf, 0, SM_DEFAULT_MAX_MESSAGE);
		memcpy(buf, &i, sizeof i);
		errno = 0;
		ssize_t r = write(fd, buf, SM_DEFAULT_MAX_MESSAGE);
		CHECK(r == SM_DEFAULT_MAX_MESSAGE,
		      "write #%u of 1024 bytes (group holds %u bytes) returned %zd (%s)",
		      i, i * SM_CHARGE(SM_DEFAULT_MAX_MESSAGE), r, strerror(errno));
	}
	CHECK(filler < SM_DEFAULT_MAX_MESSAGE, "test arithmetic: filler %u", filler);
	CHECK_ERR(write(fd, buf, filler + 1), EPERM);
	memset(buf, 0xff, filler);
	CHECK_RET(write(fd, buf, filler), filler);
	/* Exactly full: even one byte more is refused. */
	CHECK_ERR(write(fd, "x", 1), EPERM);
	CHECK_ERR(write(fd, buf, SM_DEFAULT_MAX_MESSAGE), EPERM);

	/* Reading one message frees its space, and only that. */
	CHECK_RET(read(fd, buf, sizeof buf), SM_DEFAULT_MAX_MESSAGE);
	unsigned first;
	memcpy(&first, buf, sizeof first);
	CHECK(first == 0, "first message read is #%u, expected #0", first);
	CHECK_ERR(write(fd, buf, SM_DEFAULT_MAX_MESSAGE + 1), EPERM);
	i = n;
	memset(buf, 0, SM_DEFAULT_MAX_MESSAGE);
	memcpy(buf, &i, sizeof i);
	CHECK_RET(write(fd, buf, SM_DEFAULT_MAX_MESSAGE), SM_DEFAULT_MAX_MESSAGE);
	CHECK_ERR(write(fd, "x", 1), EPERM);

	/* Everything comes back, in order (the filler after #n-1). */
	for (i = 1; i <= n; i++) {
		unsigned got;
		if (i == n) {
			CHECK_RET(read(fd, buf, sizeof buf), filler);
		}
		errno = 0;
		ssize_t r = read(fd, buf, sizeof buf);
		CHECK(r == SM_DEFAULT_MAX_MESSAGE, "drain read %u returned %zd (%s)",
		      i, r, strerror(errno));
		memcpy(&got, buf, sizeof got);
		CHECK(got == i, "drain read got message #%u, expected #%u", got, i);
	}
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_group_read_empty(struct sm_ctx *ctx)
{
	char buf[64];
	double t0;
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	t0 = sm_now_ms();
	for (int i = 0; i < 5; i++)
		CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK(sm_now_ms() - t0 < 2000, "5 empty reads took %.0f ms (blocking?)",
	      sm_now_ms() - t0);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}

enum sm_result test_group_fifo(struct sm_ctx *ctx)
{
	char out_buf[SM_DEFAULT_MAX_MESSAGE], in_buf[SM_DEFAULT_MAX_MESSAGE + 16];
	const unsigned n = 200;
	unsigned i;
	int rd = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0 || (rd = sm_group_other(ctx, 0)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		size_t len = 1 + (i * 37) % SM_DEFAULT_MAX_MESSAGE;
		sm_fill(out_buf, len, i);
		CHECK_RET(write(fd, out_buf, len), (long)len);
	}
	for (i = 0; i < n; i++) {
		size_t len = 1 + (i * 37) % SM_DEFAULT_MAX_MESSAGE;
		sm_fill(out_buf, len, i);
		errno = 0;
		ssize_t r = read(rd, in_buf, sizeof in_buf);
		CHECK(r == (ssize_t)len, "message %u: read returned %zd, expected %zu (%s)",
		      i, r, len, strerror(errno));
		CHECK(memcmp(in_buf, out_buf, len) == 0,
		      "message %u: wrong content (out of order or corrupted)", i);
	}
	CHECK_RET(read(rd, in_buf, sizeof in_buf), 0);
	CHECK_RET(read(fd, in_buf, sizeof in_buf), 0);
	close(rd);
	close(fd);
	return SM_PASS;
out:
	if (rd >= 0)
		close(rd);
	if (fd >= 0)
		close(fd);
	return SM_FAIL;
}

/* Our fix of the original defect: a short buffer gets what fits, the read
 * returns what was copied, and the rest of the message is gone. */
enum sm_result test_group_short_read(struct sm_ctx *ctx)
{
	char buf[64];
	int rd = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0 || (rd = sm_group_other(ctx, 0)) < 0)
		goto out;
	CHECK_RET(write(fd, "0123456789", 10), 10);
	CHECK_RET(write(fd, "second", 6), 6);
	memset(buf, '#', sizeof buf);
	CHECK_RET(read(rd, buf, 4), 4);
	CHECK(memcmp(buf, "0123", 4) == 0 && buf[4] == '#',
	      "short read copied \"%.8s\", expected \"0123\"", buf);
	memset(buf, 0, sizeof buf);
	CHECK_RET(read(fd, buf, sizeof buf), 6);
	CHECK(memcmp(buf, "second", 6) == 0,
	      "after a short read got \"%.6s\", expected \"second\" (rest of the "
	      "first message not consumed?)", buf);
	CHECK_RET(read(rd, buf, sizeof buf), 0);
	close(rd);
	close(fd);
	return SM_PASS;
out:
	if (rd >= 0)
		close(rd);
	if (fd >= 0)
		close(fd);
	return SM_FAIL;
}

/* One read returns one message, never two glued together or a part. */
enum sm_result test_group_no_split(struct sm_ctx *ctx)
{
	static const size_t lens[] = { 1, 100, 100, 1024, 7, 512, 513 };
	const size_t n = sizeof lens / sizeof lens[0];
	char out_buf[SM_DEFAULT_MAX_MESSAGE], in_buf[8192];
	int rd = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0 || (rd = sm_group_other(ctx, 0)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sm_fill(out_buf, lens[i], 100 + (unsigned)i);
		CHECK_RET(write(fd, out_buf, lens[i]), (long)lens[i]);
	}
	for (size_t i = 0; i < n; i++) {
		sm_fill(out_buf, lens[i], 100 + (unsigned)i);
		errno = 0;
		ssize_t r = read(rd, in_buf, sizeof in_buf);
		CHECK(r == (ssize_t)lens[i],
		      "read %zu with an 8192-byte buffer returned %zd, expected %zu (%s)",
		      i, r, lens[i], strerror(errno));
		CHECK(memcmp(in_buf, out_buf, lens[i]) == 0,
		      "message %zu corrupted", i);
	}
	CHECK_RET(read(rd, in_buf, sizeof in_buf), 0);
	close(rd);
	close(fd);
	return SM_PASS;
out:
	if (rd >= 0)
		close(rd);
	if (fd >= 0)
		close(fd);
	return SM_FAIL;
}

/* Each group has its own queue; two descriptors of one group share it. */
enum sm_result test_group_isolation(struct sm_ctx *ctx)
{
	char buf[64];
	int a = -1, a2 = -1, b = -1;

	a = sm_group_fresh(ctx, 0);
	if (a < 0)
		return SM_FAIL;
	b = sm_group_fresh(ctx, 1);
	if (b < 0)
		goto out;
	a2 = sm_group_other(ctx, 0);
	if (a2 < 0)
		goto out;
	CHECK_RET(write(a, "for-a", 5), 5);
	CHECK_RET(read(b, buf, sizeof buf), 0);
	CHECK_RET(write(b, "for-b", 5), 5);
	CHECK_RET(read(a2, buf, sizeof buf), 5);
	CHECK(memcmp(buf, "for-a", 5) == 0, "group %u delivered \"%.5s\"",
	      ctx->groups[0], buf);
	CHECK_RET(read(a, buf, sizeof buf), 0);
	CHECK_RET(read(b, buf, sizeof buf), 5);
	CHECK(memcmp(buf, "for-b", 5) == 0, "group %u delivered \"%.5s\"",
	      ctx->groups[1], buf);
	close(a);
	close(a2);
	close(b);
	return SM_PASS;
out:
	close(a);
	if (a2 >= 0)
		close(a2);
	if (b >= 0)
		close(b);
	return SM_FAIL;
}

enum sm_result test_group_unknown_ioctl(struct sm_ctx *ctx)
{
	char buf[16];
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_ERR(ioctl(fd, _IO(SYNCHMESS_IOC_MAGIC, 99)), EPERM);
	CHECK_ERR(ioctl(fd, _IO(SYNCHMESS_IOC_MAGIC, 0)), EPERM);
	CHECK_ERR(ioctl(fd, _IO(0x12, 0x34)), EPERM);
	/* The group still works. */
	CHECK_RET(write(fd, "ok", 2), 2);
	CHECK_RET(read(fd, buf, sizeof buf), 2);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}
