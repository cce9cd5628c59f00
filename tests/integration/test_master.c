/*
 * test_master.c - the master device rows of abi.md: open modes, read,
 * fsync, ioctls other than install, and IOCTL_INSTALL_GROUP itself.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"

static void master_path(const struct sm_ctx *ctx, char *buf, size_t size)
{
	snprintf(buf, size, "%s/synchmess", ctx->dev_dir);
}

/* Root passes the 0444 mode, so the daemon itself must refuse; a non-root
 * caller is stopped by the mode first (EACCES), as with the module. */
static enum sm_result open_mode_refused(struct sm_ctx *ctx, int flags,
					const char *what)
{
	char path[300];
	int fd;

	master_path(ctx, path, sizeof path);
	errno = 0;
	fd = open(path, flags | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		sm_fail(ctx, 0, "open(master, %s) succeeded, expected EPERM", what);
		return SM_FAIL;
	}
	if (errno == EPERM || (geteuid() != 0 && errno == EACCES))
		return SM_PASS;
	sm_fail(ctx, 1, "open(master, %s) failed with %s, expected EPERM", what,
		sm_errname(errno));
	return SM_FAIL;
}

enum sm_result test_master_open_wronly(struct sm_ctx *ctx)
{
	return open_mode_refused(ctx, O_WRONLY, "O_WRONLY");
}

enum sm_result test_master_open_rdwr(struct sm_ctx *ctx)
{
	return open_mode_refused(ctx, O_RDWR, "O_RDWR");
}

enum sm_result test_master_read(struct sm_ctx *ctx)
{
	char buf[64];
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_ERR(read(m, buf, sizeof buf), EPERM);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

/* The table says EPERM; on CUSE the kernel answers EINVAL before the
 * daemon could (kernel-notes.md), unless the fsync shim (alone or in
 * libsynchmess-fast.so) turns fsync into the flush ioctl, which the master
 * refuses with EPERM. */
enum sm_result test_master_fsync(struct sm_ctx *ctx)
{
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	if (ctx->transport == SM_CUSE && !sm_shim_preloaded("fsync"))
		CHECK_ERR(fsync(m), EINVAL);
	else
		CHECK_ERR(fsync(m), EPERM);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

enum sm_result test_master_ioctl_eperm(struct sm_ctx *ctx)
{
	unsigned delay = 0;
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_ERR(ioctl(m, IOCTL_AWAKE), EPERM);
	CHECK_ERR(ioctl(m, IOCTL_SET_SEND_DELAY, &delay), EPERM);
	CHECK_ERR(ioctl(m, IOCTL_REVOKE_DELAYED_MESSAGES), EPERM);
	CHECK_ERR(ioctl(m, IOCTL_FLUSH_DELAYED_MESSAGES), EPERM);
	CHECK_ERR(ioctl(m, _IO(SYNCHMESS_IOC_MAGIC, 99)), EPERM);
	CHECK_ERR(ioctl(m, _IO(0x12, 0x34)), EPERM);
	/* Last: a daemon that wrongly accepts it blocks until the bound. */
	CHECK_ERR(ioctl(m, IOCTL_SLEEP), EPERM);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

enum sm_result test_master_install_efault(struct sm_ctx *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *map = MAP_FAILED;
	struct group_t *g;
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	CHECK_ERR(ioctl(m, IOCTL_INSTALL_GROUP, (void *)1), EFAULT);
	CHECK_ERR(ioctl(m, IOCTL_INSTALL_GROUP, (void *)0), EFAULT);

	/* A struct whose first 8 bytes are mapped and the rest is not: the
	 * whole 260 bytes are the argument, so this is a bad pointer too, and
	 * nothing may be written into the mapped part. */
	map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(map != MAP_FAILED, "mmap failed");
	CHECK_SYS(mprotect(map + page, (size_t)page, PROT_NONE));
	g = (struct group_t *)(map + page - 8);
	g->descriptor = ctx->groups[0];
	memset(g->device_path, 'Z', 4);
	CHECK_ERR(ioctl(m, IOCTL_INSTALL_GROUP, g), EFAULT);
	CHECK(memcmp(g->device_path, "ZZZZ", 4) == 0,
	      "install with a half-mapped group_t wrote into the mapped part "
	      "(\"%.4s\") before failing", g->device_path);
	CHECK(g->descriptor == ctx->groups[0], "descriptor overwritten");
	munmap(map, (size_t)page * 2);
	close(m);
	return SM_PASS;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)page * 2);
	close(m);
	return SM_FAIL;
}

enum sm_result test_master_install_ebadf(struct sm_ctx *ctx)
{
	static const unsigned bad[] = { 0, 65, 66, 1000, 0x80000000u, 0xFFFFFFFFu };
	struct group_t g;
	int m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&g, 0, sizeof g);
		g.descriptor = bad[i];
		errno = 0;
		int r = ioctl(m, IOCTL_INSTALL_GROUP, &g);
		CHECK(r == -1 && errno == EBADF,
		      "install(descriptor %u) returned %d errno %s, expected -1 EBADF",
		      bad[i], r, sm_errname(errno));
	}
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

enum sm_result test_master_install(struct sm_ctx *ctx)
{
	unsigned desc = ctx->groups[0];
	char want[300];
	struct group_t g1, g2;
	double end;
	int fd = -1, m = sm_master_open(ctx);

	if (m < 0)
		return SM_FAIL;
	sm_expected_path(ctx, desc, want, sizeof want);

	memset(&g1, 0x5A, sizeof g1); /* junk: the path must be terminated */
	g1.descriptor = desc;
	CHECK_RET(ioctl(m, IOCTL_INSTALL_GROUP, &g1), 0);
	CHECK(g1.descriptor == desc, "descriptor changed to %u", g1.descriptor);
	CHECK(memchr(g1.device_path, '\0', sizeof g1.device_path) != NULL,
	      "device_path not NUL-terminated");
	CHECK(strcmp(g1.device_path, want) == 0,
	      "first install wrote \"%s\", expected \"%s\"", g1.device_path, want);

	/* Clients spin on access() until the node is usable. */
	end = sm_now_ms() + 5000;
	while (access(g1.device_path, R_OK | W_OK) != 0) {
		CHECK(sm_now_ms() < end, "%s not accessible within 5 s (%s)",
		      g1.device_path, strerror(errno));
		sm_sleep_ms(1);
	}

	/* Installing again is idempotent. */
	memset(&g2, 0, sizeof g2);
	g2.descriptor = desc;
	CHECK_RET(ioctl(m, IOCTL_INSTALL_GROUP, &g2), 0);
	CHECK(strcmp(g2.device_path, want) == 0,
	      "second install wrote \"%s\", expected \"%s\"", g2.device_path, want);
	CHECK_SYS(access(g2.device_path, R_OK | W_OK));

	fd = open(g2.device_path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0, "open(%s, O_RDWR) failed: %s", g2.device_path,
	      strerror(errno));
	close(fd);
	close(m);
	return SM_PASS;
out:
	close(m);
	return SM_FAIL;
}

/* Installing an existing group again leaves its queue and delay alone. */
enum sm_result test_master_install_keeps_state(struct sm_ctx *ctx)
{
	struct group_t g;
	char buf[64];
	int m = -1, fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	m = sm_master_open(ctx);
	if (m < 0)
		goto out;
	CHECK_RET(write(fd, "kept", 4), 4);
	CHECK_RET(sm_set_delay(fd, 60000), 0);
	CHECK_RET(write(fd, "delayed", 7), 7);
	memset(&g, 0, sizeof g);
	g.descriptor = ctx->groups[0];
	CHECK_RET(ioctl(m, IOCTL_INSTALL_GROUP, &g), 0);
	CHECK_RET(read(fd, buf, sizeof buf), 4);
	CHECK(memcmp(buf, "kept", 4) == 0, "queued message changed by a re-install");
	CHECK_RET(read(fd, buf, sizeof buf), 0);
	CHECK_ERR(sm_set_delay(fd, 0), EPERM); /* the delayed one is pending */
	CHECK_RET(ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	CHECK_RET(read(fd, buf, sizeof buf), 7);
	CHECK_RET(sm_set_delay(fd, 0), 0);
	close(m);
	close(fd);
	return SM_PASS;
out:
	if (m >= 0)
		close(m);
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* 16 threads install 4 groups at once (4 threads per descriptor, each with
 * its own master descriptor), open them and write one message each: one
 * queue per group must come out of it (on a fresh daemon this races the
 * creation itself). */
#define RACERS 16
#define RACE_GROUPS 4

struct racer {
	pthread_t thread;
	struct sm_ctx *ctx;
	unsigned index;
	int ok;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	unsigned desc = r->ctx->groups[r->index % RACE_GROUPS];
	int fd = sm_group_open(r->ctx, desc);
	unsigned char byte = (unsigned char)r->index;

	if (fd < 0)
		return NULL;
	if (write(fd, &byte, 1) == 1)
		r->ok = 1;
	else
		sm_fail(r->ctx, 1, "racer %u: write to group %u failed", r->index, desc);
	close(fd);
	return NULL;
}

enum sm_result test_master_install_concurrent(struct sm_ctx *ctx)
{
	static struct racer racers[RACERS];
	int fds[RACE_GROUPS], started = 0, seen[RACERS] = { 0 };
	unsigned g;

	for (g = 0; g < RACE_GROUPS; g++)
		fds[g] = -1;
	/* A group left by an earlier run is cleaned first (it exists, so there
	 * is no creation race to test on it anyway). */
	for (g = 0; g < RACE_GROUPS; g++) {
		char path[300];
		sm_expected_path(ctx, ctx->groups[g], path, sizeof path);
		if (access(path, F_OK) == 0) {
			int fd = sm_group_fresh(ctx, g);
			if (fd < 0)
				goto out;
			close(fd);
		}
	}
	for (; started < RACERS; started++) {
		racers[started] = (struct racer){ .ctx = ctx, .index = (unsigned)started };
		int e = pthread_create(&racers[started].thread, NULL, racer_main,
				       &racers[started]);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	for (int i = 0; i < started; i++)
		pthread_join(racers[i].thread, NULL); /* each bounded by the runner */
	started = 0;
	for (int i = 0; i < RACERS; i++)
		CHECK(racers[i].ok, "racer %d failed", i);

	for (g = 0; g < RACE_GROUPS; g++) {
		unsigned char buf[64];
		int count = 0;
		ssize_t r;
		fds[g] = sm_group_open(ctx, ctx->groups[g]);
		if (fds[g] < 0)
			goto out;
		while ((r = read(fds[g], buf, sizeof buf)) > 0) {
			CHECK(r == 1 && buf[0] < RACERS && buf[0] % RACE_GROUPS == g,
			      "group %u delivered a stray %zd-byte message (0x%02x)",
			      ctx->groups[g], r, buf[0]);
			CHECK(!seen[buf[0]], "message of racer %u delivered twice", buf[0]);
			seen[buf[0]] = 1;
			count++;
		}
		CHECK_SYS(r);
		CHECK(count == RACERS / RACE_GROUPS,
		      "group %u holds %d of the %d messages written after concurrent "
		      "installs", ctx->groups[g], count, RACERS / RACE_GROUPS);
	}
	for (g = 0; g < RACE_GROUPS; g++)
		close(fds[g]);
	return SM_PASS;
out:
	for (g = 0; g < RACE_GROUPS; g++)
		if (fds[g] >= 0)
			close(fds[g]);
	return SM_FAIL;
}
