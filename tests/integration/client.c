/*
 * client.c - see client.h.
 */
#define _GNU_SOURCE
#include "client.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a freshly installed group may take to become accessible. */
#define ACCESS_BOUND_MS 5000
/* How long draining a group may take. */
#define DRAIN_BOUND_MS 20000

double sm_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void sm_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

struct timespec sm_deadline(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void sm_fill(void *buf, size_t size, unsigned seed)
{
	unsigned char *p = buf;
	unsigned x = seed * 2654435761u + 12345u;

	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)(x >> 8);
	}
}

int sm_master_open(struct sm_ctx *ctx)
{
	char path[300];
	int fd;

	snprintf(path, sizeof path, "%s/synchmess", ctx->dev_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		sm_fail(ctx, 1, "open(%s, O_RDONLY) failed", path);
	return fd;
}

static void expected_path_in(const struct sm_ctx *ctx, const char *dir,
			     unsigned desc, char *buf, size_t size)
{
	if (ctx->transport == SM_FUSE)
		snprintf(buf, size, "%s/synchmess%u", dir, desc);
	else
		snprintf(buf, size, "/dev/synch/synchmess%u", desc);
}

void sm_expected_path(const struct sm_ctx *ctx, unsigned desc, char *buf,
		      size_t size)
{
	expected_path_in(ctx, ctx->dev_dir, desc, buf, size);
}

/* sm_group_open through the master in dir. */
static int group_open_in(struct sm_ctx *ctx, const char *dir, unsigned desc)
{
	struct group_t group;
	char want[300];
	double end;
	int master, fd, r;

	char mpath[300];
	snprintf(mpath, sizeof mpath, "%s/synchmess", dir);
	master = open(mpath, O_RDONLY | O_CLOEXEC);
	if (master < 0) {
		sm_fail(ctx, 1, "open(%s, O_RDONLY) failed", mpath);
		return -1;
	}
	memset(&group, 0, sizeof group);
	group.descriptor = desc;
	r = ioctl(master, IOCTL_INSTALL_GROUP, &group);
	close(master);
	if (r != 0) {
		sm_fail(ctx, 1, "IOCTL_INSTALL_GROUP(%u) returned %d", desc, r);
		return -1;
	}
	expected_path_in(ctx, dir, desc, want, sizeof want);
	if (strcmp(group.device_path, want) != 0) {
		sm_fail(ctx, 0, "install(%u) wrote path \"%.256s\", expected \"%s\"",
			desc, group.device_path, want);
		return -1;
	}
	end = sm_now_ms() + ACCESS_BOUND_MS;
	while (access(group.device_path, R_OK | W_OK) != 0) {
		if (sm_now_ms() > end) {
			sm_fail(ctx, 1, "%s not accessible R_OK|W_OK %d ms after install",
				group.device_path, ACCESS_BOUND_MS);
			return -1;
		}
		sm_sleep_ms(1);
	}
	fd = open(group.device_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		sm_fail(ctx, 1, "open(%s, O_RDWR) failed", group.device_path);
	return fd;
}

int sm_group_open(struct sm_ctx *ctx, unsigned desc)
{
	return group_open_in(ctx, ctx->dev_dir, desc);
}

int sm_group_open_other(struct sm_ctx *ctx, unsigned desc)
{
	return group_open_in(ctx, ctx->peer_dir ? ctx->peer_dir : ctx->dev_dir,
			     desc);
}

int sm_group_other(struct sm_ctx *ctx, unsigned idx)
{
	if (idx >= ctx->ngroups) {
		sm_fail(ctx, 0, "test bug: group %u of %u", idx, ctx->ngroups);
		return -1;
	}
	return sm_group_open_other(ctx, ctx->groups[idx]);
}

int sm_group_open_nth(struct sm_ctx *ctx, unsigned desc, unsigned n)
{
	return n % 2 ? sm_group_open_other(ctx, desc) : sm_group_open(ctx, desc);
}

int sm_set_delay(int fd, unsigned ms)
{
	unsigned delay = ms;
	return ioctl(fd, IOCTL_SET_SEND_DELAY, &delay);
}

int sm_group_reset(struct sm_ctx *ctx, int fd)
{
	char buf[65536];
	double end = sm_now_ms() + DRAIN_BOUND_MS;
	ssize_t r;

	if (ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES) != 0) {
		sm_fail(ctx, 1, "reset: IOCTL_REVOKE_DELAYED_MESSAGES failed");
		return -1;
	}
	if (sm_set_delay(fd, 0) != 0) {
		sm_fail(ctx, 1, "reset: IOCTL_SET_SEND_DELAY(0) after revoke failed");
		return -1;
	}
	if (ioctl(fd, IOCTL_AWAKE) < 0) {
		sm_fail(ctx, 1, "reset: IOCTL_AWAKE failed");
		return -1;
	}
	while ((r = read(fd, buf, sizeof buf)) > 0) {
		if (sm_now_ms() > end) {
			sm_fail(ctx, 0, "reset: group not drained after %d ms",
				DRAIN_BOUND_MS);
			return -1;
		}
	}
	if (r < 0) {
		sm_fail(ctx, 1, "reset: read while draining failed");
		return -1;
	}
	return 0;
}

int sm_group_fresh(struct sm_ctx *ctx, unsigned idx)
{
	int fd;

	if (idx >= ctx->ngroups) {
		sm_fail(ctx, 0, "test bug: group %u of %u", idx, ctx->ngroups);
		return -1;
	}
	fd = sm_group_open(ctx, ctx->groups[idx]);
	if (fd < 0)
		return -1;
	if (sm_group_reset(ctx, fd) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

ssize_t sm_read_within(int fd, void *buf, size_t size, unsigned ms)
{
	double end = sm_now_ms() + ms;
	ssize_t r;

	for (;;) {
		r = read(fd, buf, size);
		if (r != 0 || sm_now_ms() > end)
			return r;
		sm_sleep_ms(2);
	}
}

/* The system call tid is blocked in: its number and first two arguments.
 * 0, or -1 when tid runs (or is gone, or /proc says nothing usable). */
static int blocked_syscall(pid_t tid, long *nr, unsigned long *a0,
			   unsigned long *a1)
{
	char path[64], line[256];
	FILE *f;
	int n;

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fgets(line, sizeof line, f) ? sscanf(line, "%ld %lx %lx", nr, a0, a1) : 0;
	fclose(f);
	return n == 3 && *nr >= 0 ? 0 : -1;
}

static int wchan_starts_with(pid_t tid, const char *prefix)
{
	char path[64], name[128] = "";
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/wchan", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(name, sizeof name, f))
		name[0] = '\0';
	fclose(f);
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

int sm_wait_in_ioctl(struct sm_ctx *ctx, pid_t tid, unsigned long request,
		     const atomic_int *done, unsigned ms)
{
	double end = sm_now_ms() + ms;
	unsigned long a0, a1;
	long nr;

	for (;;) {
		if (done && atomic_load(done))
			return 1;
		if (blocked_syscall(tid, &nr, &a0, &a1) == 0 && nr == SYS_ioctl &&
		    (unsigned)a1 == (unsigned)request)
			return 0;
		if (sm_now_ms() > end) {
			sm_fail(ctx, 0, "task %d not seen blocked in ioctl(0x%lx) "
				"within %u ms", (int)tid, request, ms);
			return -1;
		}
		sm_sleep_ms(1);
	}
}

static int is_poll(long nr)
{
#ifdef SYS_poll
	if (nr == SYS_poll)
		return 1;
#endif
	return nr == SYS_ppoll;
}

int sm_wait_in_poll(struct sm_ctx *ctx, pid_t tid, const atomic_int *done,
		    unsigned ms)
{
	double end = sm_now_ms() + ms;
	unsigned long a0, a1;
	long nr;

	for (;;) {
		if (done && atomic_load(done))
			return 1;
		/* Asleep in the poll code itself, not in the FUSE request that
		 * asks the daemon (request_wait_answer): where the kernel
		 * inlines poll_schedule_timeout (Debian's 6.1), the wait shows
		 * as do_sys_poll. */
		if (blocked_syscall(tid, &nr, &a0, &a1) == 0 && is_poll(nr) &&
		    (wchan_starts_with(tid, "poll_schedule_timeout") ||
		     wchan_starts_with(tid, "do_sys_poll") ||
		     wchan_starts_with(tid, "do_poll")))
			return 0;
		if (sm_now_ms() > end) {
			sm_fail(ctx, 0, "task %d not seen asleep in poll within %u ms",
				(int)tid, ms);
			return -1;
		}
		sm_sleep_ms(1);
	}
}

int sm_shim_preloaded(const char *fn)
{
	Dl_info info;
	void *f = dlsym(RTLD_DEFAULT, fn);

	return f && dladdr(f, &info) && info.dli_fname &&
	       (strstr(info.dli_fname, "libsynchmess-fsync.so") ||
		strstr(info.dli_fname, "libsynchmess-fast.so"));
}
