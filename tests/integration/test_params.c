/*
 * test_params.c - IOCTL_GET_PARAMS / IOCTL_SET_PARAMS on the master: the
 * defaults, a larger message size, shrinking storage below what is queued,
 * refusal on groups and for non-root callers.  Every test restores the
 * parameters it changed (and the runner checks after each test).
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

enum sm_result test_params_default(struct sm_ctx *ctx)
{
	struct synchmess_params p;
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	memset(&p, 0xFF, sizeof p);
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &p), 0);
	CHECK(p.max_message_size == SM_DEFAULT_MAX_MESSAGE &&
	      p.max_storage_size == SM_DEFAULT_MAX_STORAGE,
	      "GET_PARAMS reports {%llu, %llu}, expected the defaults {1024, 1048576}",
	      p.max_message_size, p.max_storage_size);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

/* Sets p; SKIP-worthy (returns 1) when the caller is not root. */
static int set_params(struct sm_ctx *ctx, int m, unsigned long long msg,
		      unsigned long long storage)
{
	struct synchmess_params p = { msg, storage };
	errno = 0;
	if (ioctl(m, IOCTL_SET_PARAMS, &p) == 0)
		return 0;
	if (errno == EPERM && geteuid() != 0) {
		snprintf(ctx->reason, sizeof ctx->reason, "IOCTL_SET_PARAMS needs root");
		return 1;
	}
	sm_fail(ctx, 1, "IOCTL_SET_PARAMS {%llu, %llu} failed", msg, storage);
	return -1;
}

enum sm_result test_params_message_size(struct sm_ctx *ctx)
{
	char out_buf[2001], in_buf[4096];
	struct synchmess_params saved, now;
	int restore = 0, fd = -1, m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &saved), 0);
	int s = set_params(ctx, m, 2000, 0);
	if (s == 1) {
		close(m);
		return SM_SKIP;
	}
	if (s != 0)
		goto out;
	restore = 1;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &now), 0);
	CHECK(now.max_message_size == 2000 &&
	      now.max_storage_size == saved.max_storage_size,
	      "after SET {2000, 0} GET reports {%llu, %llu}", now.max_message_size,
	      now.max_storage_size);
	/* All-zero SET changes nothing. */
	CHECK(set_params(ctx, m, 0, 0) == 0, "SET {0, 0} refused");
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &now), 0);
	CHECK(now.max_message_size == 2000 &&
	      now.max_storage_size == saved.max_storage_size,
	      "after SET {0, 0} GET reports {%llu, %llu}", now.max_message_size,
	      now.max_storage_size);

	fd = sm_group_fresh(ctx, 0);
	if (fd < 0)
		goto out;
	sm_fill(out_buf, sizeof out_buf, 2000);
	CHECK_RET(write(fd, out_buf, 2000), 2000);
	CHECK_ERR(write(fd, out_buf, 2001), EPERM);
	CHECK_RET(read(fd, in_buf, sizeof in_buf), 2000);
	CHECK(memcmp(in_buf, out_buf, 2000) == 0, "2000-byte message corrupted");

	CHECK(set_params(ctx, m, saved.max_message_size, 0) == 0, "restore refused");
	restore = 0;
	CHECK_ERR(write(fd, out_buf, saved.max_message_size + 1), EPERM);
	CHECK_RET(write(fd, out_buf, saved.max_message_size),
		  (long)saved.max_message_size);
	CHECK_RET(read(fd, in_buf, sizeof in_buf), (long)saved.max_message_size);
	close(fd);
	close(m);
	return SM_PASS;
out:
	if (restore)
		ioctl(m, IOCTL_SET_PARAMS, &saved);
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	close(m);
	return SM_FAIL;
}

enum sm_result test_params_shrink_storage(struct sm_ctx *ctx)
{
	char out_buf[1000], in_buf[2048];
	struct synchmess_params saved, now;
	int restore = 0, fd = -1, m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &saved), 0);
	fd = sm_group_fresh(ctx, 0);
	if (fd < 0)
		goto out;
	for (unsigned i = 0; i < 10; i++) {
		sm_fill(out_buf, sizeof out_buf, 500 + i);
		CHECK_RET(write(fd, out_buf, sizeof out_buf), 1000);
	}
	int s = set_params(ctx, m, 0, SM_CHARGE(2048));
	if (s == 1) {
		sm_group_reset(ctx, fd);
		close(fd);
		close(m);
		return SM_SKIP;
	}
	if (s != 0)
		goto out;
	restore = 1;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &now), 0);
	CHECK(now.max_storage_size == SM_CHARGE(2048) &&
	      now.max_message_size == saved.max_message_size,
	      "after SET {0, 2048 + overhead} GET reports {%llu, %llu}", now.max_message_size,
	      now.max_storage_size);
	CHECK_ERR(write(fd, "x", 1), EPERM);

	/* All 10000 queued bytes survive the smaller limit. */
	for (unsigned i = 0; i < 10; i++) {
		sm_fill(out_buf, sizeof out_buf, 500 + i);
		errno = 0;
		ssize_t r = read(fd, in_buf, sizeof in_buf);
		CHECK(r == 1000 && memcmp(in_buf, out_buf, 1000) == 0,
		      "queued message %u after shrinking: read %zd%s (%s)", i, r,
		      r == 1000 ? ", corrupted" : "", strerror(errno));
	}
	CHECK_RET(read(fd, in_buf, sizeof in_buf), 0);

	/* The new limit holds: 2048 + overhead bytes of charge fit, not one
	 * more (three messages: 1000 + 1000 - 2 * overhead + 48). */
	CHECK_RET(write(fd, out_buf, 1000), 1000);
	CHECK_RET(write(fd, out_buf, 1000 - 2 * SYNCHMESS_MESSAGE_OVERHEAD), 1000 - 2 * SYNCHMESS_MESSAGE_OVERHEAD);
	CHECK_ERR(write(fd, out_buf, 49), EPERM);
	CHECK_RET(write(fd, out_buf, 48), 48);
	CHECK_ERR(write(fd, out_buf, 1), EPERM);

	CHECK(set_params(ctx, m, 0, saved.max_storage_size) == 0, "restore refused");
	restore = 0;
	CHECK_RET(write(fd, out_buf, 1), 1);
	sm_group_reset(ctx, fd);
	close(fd);
	close(m);
	return SM_PASS;
out:
	if (restore)
		ioctl(m, IOCTL_SET_PARAMS, &saved);
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	close(m);
	return SM_FAIL;
}

/* The parameter ioctls belong to the master; on a group they are unknown. */
enum sm_result test_params_on_group(struct sm_ctx *ctx)
{
	struct synchmess_params p = { 0 }, big = { 4096, 0 };
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_ERR(ioctl(fd, IOCTL_GET_PARAMS, &p), EPERM);
	CHECK_ERR(ioctl(fd, IOCTL_SET_PARAMS, &big), EPERM);
	close(fd);
	return SM_PASS;
out:
	close(fd);
	return SM_FAIL;
}

/* In a child: drop to uid/gid 65534 and try SET_PARAMS on the master
 * descriptor opened as root (so node modes and mount options do not
 * matter: the daemon must check the caller's uid itself).
 * Exit codes: 0 refused with EPERM, 1 wrong answer, 3 setuid failed. */
static int nonroot_child(int m)
{
	struct synchmess_params p = { 4096, 0 };

	if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
		return 3;
	errno = 0;
	int r = ioctl(m, IOCTL_SET_PARAMS, &p);
	if (r == -1 && errno == EPERM)
		return 0;
	fprintf(stderr, "# SET_PARAMS by uid 65534 returned %d (%s)\n", r,
		sm_errname(errno));
	return 1;
}

enum sm_result test_params_set_nonroot(struct sm_ctx *ctx)
{
	struct synchmess_params before, after;
	int status = 0, m = sm_master_open(ctx);
	pid_t child;

	if (m < 0)
		return SM_FAIL;
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &before), 0);
	child = fork();
	CHECK_SYS(child);
	if (child == 0)
		_exit(nonroot_child(m));
	double end = sm_now_ms() + 5000;
	pid_t w;
	while ((w = waitpid(child, &status, WNOHANG)) == 0 && sm_now_ms() < end)
		sm_sleep_ms(5);
	if (w != child) {
		kill(child, SIGKILL);
		sm_fail(ctx, 0, "non-root child did not finish within 5 s");
		goto out;
	}
	CHECK(WIFEXITED(status), "non-root child died (status 0x%x)", status);
	CHECK(WEXITSTATUS(status) != 3, "setuid(65534) failed in the child");
	CHECK(WEXITSTATUS(status) == 0, "SET_PARAMS by uid 65534 was not refused "
	      "with EPERM");
	CHECK_RET(ioctl(m, IOCTL_GET_PARAMS, &after), 0);
	CHECK(after.max_message_size == before.max_message_size &&
	      after.max_storage_size == before.max_storage_size,
	      "a refused SET_PARAMS changed the parameters to {%llu, %llu}",
	      after.max_message_size, after.max_storage_size);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}
