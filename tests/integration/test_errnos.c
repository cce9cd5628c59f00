/*
 * test_errnos.c - one errno per mistake, the same on both transports.
 *
 * The table lists a client's mistakes and the one errno each must give.  It
 * has no transport branches: the suite runs it on FUSE and on CUSE, so a row
 * that passes on one and fails on the other is a transport that chose an
 * errno of its own (the daemon's errnos all come from core/errc.cpp).
 * Mistakes whose errno the kernel makes differ between the two are not rows
 * (docs/abi.md, "CUSE and FUSE side by side"): fsync and poll on the
 * master, FIONREAD, mmap, lseek, and a bad pointer with a number that is
 * not valid on the device but has the write bit.
 *
 * Rows marked root run only as root; rows marked non-root run as uid 65534
 * (in a child that drops its ids, on descriptors opened before) when the
 * suite is root, and directly otherwise.  The suite expects the daemon's
 * default parameters and --max-groups (harness.h).
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
#include "synchmess_stats.h"

enum device { MASTER, GROUP, NODE };
enum caller { ANYONE, ROOT, NON_ROOT };
enum op { OP_READ, OP_WRITE, OP_IOCTL, OP_OPEN };

/* What the call's buffer or ioctl argument is. */
enum arg {
	ARG_NONE,         /* ioctl: 0; read/write: a valid buffer */
	ARG_NULL,         /* the pointer NULL */
	ARG_ONE,          /* the pointer 1 */
	ARG_BUFFER,       /* a valid zeroed buffer larger than any argument */
	ARG_GROUP_0,      /* struct group_t, descriptor 0 */
	ARG_GROUP_OVER,   /* struct group_t, descriptor MAX_NUM_GROUPS + 1 */
	ARG_GROUP_HUGE,   /* struct group_t, descriptor UINT_MAX */
	ARG_GROUP_OWN,    /* struct group_t, the test's group */
	ARG_PARAMS_SAME,  /* synchmess_params: the defaults (harmless if taken) */
	ARG_PARAMS_MSG,   /* max_message_size one past its range */
	ARG_PARAMS_STORE, /* max_storage_size one past its range */
	ARG_TOO_BIG,      /* write: max_message_size + 1 bytes */
	ARG_STATS_FLAGS,  /* synchmess_group_stats, the test's group, an unknown flag */
};

struct mistake {
	const char *what;
	enum device on;   /* NODE: `node` opened with `flags` */
	enum caller as;
	enum op op;
	unsigned long cmd; /* OP_IOCTL */
	enum arg arg;
	const char *node;  /* OP_OPEN: name under the dev dir; NULL: the group
	                      one past --max-groups */
	int flags;         /* OP_OPEN */
	int err;           /* the one errno, on both transports */
};

#define IOC(dev, as, cmd, arg, err) { #cmd " " #arg " on " #dev, dev, as, OP_IOCTL, cmd, arg, NULL, 0, err }

/* Largest values accepted by IOCTL_SET_PARAMS (docs/abi.md "Parameters"). */
#define LARGEST_MESSAGE 65536ull
#define LARGEST_STORAGE (1ull << 40)

static const struct mistake mistakes[] = {
	/* The master: only install and the parameters. */
	{ "read on the master", MASTER, ANYONE, OP_READ, 0, ARG_NONE, NULL, 0, EPERM },
	{ "write on the master (read-only fd)", MASTER, ANYONE, OP_WRITE, 0, ARG_NONE, NULL, 0, EBADF },
	{ "open the master O_WRONLY", NODE, ROOT, OP_OPEN, 0, ARG_NONE, "synchmess", O_WRONLY, EPERM },
	{ "open the master O_RDWR", NODE, ROOT, OP_OPEN, 0, ARG_NONE, "synchmess", O_RDWR, EPERM },
	IOC(MASTER, ANYONE, IOCTL_AWAKE, ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, IOCTL_SET_SEND_DELAY, ARG_BUFFER, EPERM),
	IOC(MASTER, ANYONE, IOCTL_REVOKE_DELAYED_MESSAGES, ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, IOCTL_FLUSH_DELAYED_MESSAGES, ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, _IO(SYNCHMESS_IOC_MAGIC, 0), ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, _IO(SYNCHMESS_IOC_MAGIC, 9), ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, _IOR(SYNCHMESS_IOC_MAGIC, 99, int), ARG_BUFFER, EPERM),
	IOC(MASTER, ANYONE, _IO(0x12, 0x34), ARG_NONE, EPERM),
	IOC(MASTER, ANYONE, IOCTL_INSTALL_GROUP, ARG_GROUP_0, EBADF),
	IOC(MASTER, ANYONE, IOCTL_INSTALL_GROUP, ARG_GROUP_OVER, EBADF),
	IOC(MASTER, ANYONE, IOCTL_INSTALL_GROUP, ARG_GROUP_HUGE, EBADF),
	IOC(MASTER, ANYONE, IOCTL_INSTALL_GROUP, ARG_NULL, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_INSTALL_GROUP, ARG_ONE, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_GET_PARAMS, ARG_NULL, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_SET_PARAMS, ARG_NULL, EFAULT),
	IOC(MASTER, NON_ROOT, IOCTL_SET_PARAMS, ARG_PARAMS_SAME, EPERM),
	IOC(MASTER, NON_ROOT, IOCTL_SET_PARAMS, ARG_NULL, EFAULT),
	IOC(MASTER, ROOT, IOCTL_SET_PARAMS, ARG_PARAMS_MSG, EINVAL),
	IOC(MASTER, ROOT, IOCTL_SET_PARAMS, ARG_PARAMS_STORE, EINVAL),
	/* The statistics (synchmess_stats.h): descriptor first, like group_t. */
	IOC(MASTER, ANYONE, IOCTL_GET_STATS, ARG_NULL, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_GET_STATS, ARG_ONE, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_NULL, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_ONE, EFAULT),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_GROUP_0, EBADF),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_GROUP_OVER, EBADF),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_GROUP_HUGE, EBADF),
	IOC(MASTER, ANYONE, IOCTL_GET_GROUP_STATS, ARG_STATS_FLAGS, EINVAL),

	/* A group: the master's numbers and unknown ones. */
	IOC(GROUP, ANYONE, IOCTL_INSTALL_GROUP, ARG_GROUP_OWN, EPERM),
	IOC(GROUP, ANYONE, IOCTL_GET_PARAMS, ARG_BUFFER, EPERM),
	IOC(GROUP, ANYONE, IOCTL_SET_PARAMS, ARG_PARAMS_SAME, EPERM),
	IOC(GROUP, ANYONE, IOCTL_GET_STATS, ARG_BUFFER, EPERM),
	IOC(GROUP, ANYONE, IOCTL_GET_GROUP_STATS, ARG_GROUP_OWN, EPERM),
	IOC(GROUP, ANYONE, _IO(SYNCHMESS_IOC_MAGIC, 0), ARG_NONE, EPERM),
	IOC(GROUP, ANYONE, _IO(SYNCHMESS_IOC_MAGIC, 9), ARG_NONE, EPERM),
	IOC(GROUP, ANYONE, _IO(SYNCHMESS_IOC_MAGIC, 99), ARG_NONE, EPERM),
	IOC(GROUP, ANYONE, _IOR(SYNCHMESS_IOC_MAGIC, 99, int), ARG_BUFFER, EPERM),
	IOC(GROUP, ANYONE, _IO(0x12, 0x34), ARG_NONE, EPERM),
	/* Bad pointers where the number reads its argument. */
	IOC(GROUP, ANYONE, IOCTL_SET_SEND_DELAY, ARG_NULL, EFAULT),
	IOC(GROUP, ANYONE, IOCTL_SET_SEND_DELAY, ARG_ONE, EFAULT),
	IOC(GROUP, ANYONE, IOCTL_INSTALL_GROUP, ARG_NULL, EFAULT),
	IOC(GROUP, ANYONE, IOCTL_SET_PARAMS, ARG_NULL, EFAULT),
	IOC(GROUP, ANYONE, IOCTL_GET_GROUP_STATS, ARG_NULL, EFAULT),
	/* A number that only writes its argument is refused before. */
	IOC(GROUP, ANYONE, IOCTL_GET_PARAMS, ARG_NULL, EPERM),
	{ "write of max_message_size + 1 bytes", GROUP, ANYONE, OP_WRITE, 0, ARG_TOO_BIG, NULL, 0, EPERM },
	{ "write from NULL", GROUP, ANYONE, OP_WRITE, 0, ARG_NULL, NULL, 0, EFAULT },
	{ "read into NULL", GROUP, ANYONE, OP_READ, 0, ARG_NULL, NULL, 0, EFAULT },

	/* Groups that do not exist. */
	{ "open synchmess0", NODE, ANYONE, OP_OPEN, 0, ARG_NONE, "synchmess0", O_RDWR, ENOENT },
	{ "open a group past --max-groups", NODE, ANYONE, OP_OPEN, 0, ARG_NONE, NULL, O_RDWR, ENOENT },

	/* Last: a daemon that wrongly accepts it blocks until the test's bound. */
	IOC(MASTER, ANYONE, IOCTL_SLEEP, ARG_NONE, EPERM),
};

struct fds {
	int master, group;
	unsigned desc;
};

/* Runs row r; returns 1 if it gave its errno, else 0 with the reason in
 * `why`.  A SET_PARAMS that was wrongly taken is undone. */
static int run(const struct sm_ctx *ctx, const struct mistake *r, const struct fds *f,
	       char *why, size_t why_size)
{
	static char big[SM_DEFAULT_MAX_MESSAGE + 1];
	union {
		struct group_t g;
		struct synchmess_params p;
		struct synchmess_group_stats s;
		char bytes[512];
	} a;
	void *arg = &a;
	int fd = r->on == MASTER ? f->master : f->group;
	long ret = 0;

	memset(&a, 0, sizeof a);
	switch (r->arg) {
	case ARG_NONE: arg = r->op == OP_IOCTL ? NULL : &a; break;
	case ARG_NULL: arg = NULL; break;
	case ARG_ONE: arg = (void *)1; break;
	case ARG_BUFFER: break;
	case ARG_GROUP_0: a.g.descriptor = 0; break;
	case ARG_GROUP_OVER: a.g.descriptor = MAX_NUM_GROUPS + 1; break;
	case ARG_GROUP_HUGE: a.g.descriptor = 0xFFFFFFFFu; break;
	case ARG_GROUP_OWN: a.g.descriptor = f->desc; break;
	case ARG_PARAMS_SAME:
		a.p.max_message_size = SM_DEFAULT_MAX_MESSAGE;
		a.p.max_storage_size = SM_DEFAULT_MAX_STORAGE;
		break;
	case ARG_PARAMS_MSG: a.p.max_message_size = LARGEST_MESSAGE + 1; break;
	case ARG_PARAMS_STORE: a.p.max_storage_size = LARGEST_STORAGE + 1; break;
	case ARG_TOO_BIG: arg = big; break;
	case ARG_STATS_FLAGS:
		a.s.descriptor = f->desc;
		a.s.flags = 2;
		break;
	}

	errno = 0;
	switch (r->op) {
	case OP_READ:
		ret = read(fd, arg, 64);
		break;
	case OP_WRITE:
		ret = write(fd, arg, r->arg == ARG_TOO_BIG ? sizeof big : 1);
		break;
	case OP_IOCTL:
		ret = ioctl(fd, r->cmd, arg);
		break;
	case OP_OPEN: {
		char path[300];
		if (r->node == NULL)
			snprintf(path, sizeof path, "%s/synchmess%u", ctx->dev_dir,
				 MAX_NUM_GROUPS + 1);
		else
			snprintf(path, sizeof path, "%s/%s", ctx->dev_dir, r->node);
		ret = open(path, r->flags | O_CLOEXEC);
		if (ret >= 0)
			close((int)ret);
		break;
	}
	}
	int err = errno;
	if (ret == -1 && err == r->err)
		return 1;
	if (ret == -1)
		snprintf(why, why_size, "%s failed with %s, expected %s", r->what,
			 sm_errname(err), sm_errname(r->err));
	else
		snprintf(why, why_size, "%s returned %ld, expected -1 %s", r->what, ret,
			 sm_errname(r->err));
	if (r->op == OP_IOCTL && r->cmd == IOCTL_SET_PARAMS && ret == 0) {
		struct synchmess_params back = { SM_DEFAULT_MAX_MESSAGE,
						 SM_DEFAULT_MAX_STORAGE };
		ioctl(f->master, IOCTL_SET_PARAMS, &back);
	}
	return 0;
}

/* The NON_ROOT rows as uid 65534, in a child; 0 or -1 (reason recorded). */
static int run_dropped(struct sm_ctx *ctx, const struct fds *f, unsigned *ran)
{
	int pipefd[2], status = 0;
	char why[400] = "";
	pid_t child, w;

	if (pipe(pipefd) != 0) {
		sm_fail(ctx, 1, "pipe");
		return -1;
	}
	child = fork();
	if (child < 0) {
		sm_fail(ctx, 1, "fork");
		return -1;
	}
	if (child == 0) {
		close(pipefd[0]);
		if (setgid(65534) != 0 || setuid(65534) != 0) {
			snprintf(why, sizeof why, "setuid(65534) failed: %s", strerror(errno));
			(void)!write(pipefd[1], why, strlen(why));
			_exit(1);
		}
		for (size_t i = 0; i < sizeof mistakes / sizeof mistakes[0]; i++) {
			if (mistakes[i].as != NON_ROOT)
				continue;
			if (!run(ctx, &mistakes[i], f, why, sizeof why)) {
				(void)!write(pipefd[1], why, strlen(why));
				_exit(1);
			}
		}
		_exit(0);
	}
	close(pipefd[1]);
	double end = sm_now_ms() + 10000;
	while ((w = waitpid(child, &status, WNOHANG)) == 0 && sm_now_ms() < end)
		sm_sleep_ms(5);
	if (w != child) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		close(pipefd[0]);
		sm_fail(ctx, 0, "the uid 65534 child did not finish within 10 s");
		return -1;
	}
	ssize_t n = read(pipefd[0], why, sizeof why - 1);
	close(pipefd[0]);
	why[n > 0 ? n : 0] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		sm_fail(ctx, 0, "as uid 65534: %s", why[0] ? why : "the child died");
		return -1;
	}
	for (size_t i = 0; i < sizeof mistakes / sizeof mistakes[0]; i++)
		*ran += mistakes[i].as == NON_ROOT;
	return 0;
}

enum sm_result test_errnos_one_per_mistake(struct sm_ctx *ctx)
{
	struct fds f = { -1, -1, ctx->groups[0] };
	int root = geteuid() == 0;
	unsigned ran = 0;
	char why[400];
	enum sm_result result = SM_FAIL;

	f.master = sm_master_open(ctx);
	if (f.master < 0)
		goto out;
	f.group = sm_group_fresh(ctx, 0);
	if (f.group < 0)
		goto out;
	if (root && run_dropped(ctx, &f, &ran) != 0)
		goto out;
	for (size_t i = 0; i < sizeof mistakes / sizeof mistakes[0]; i++) {
		const struct mistake *r = &mistakes[i];
		if ((r->as == ROOT && !root) || (r->as == NON_ROOT && root))
			continue;
		CHECK(run(ctx, r, &f, why, sizeof why), "%s", why);
		ran++;
	}
	fprintf(stderr, "# errnos: %u of %zu mistakes checked (%s)\n", ran,
		sizeof mistakes / sizeof mistakes[0], root ? "root" : "not root");
	result = SM_PASS;
out:
	if (f.group >= 0)
		close(f.group);
	if (f.master >= 0)
		close(f.master);
	return result;
}
