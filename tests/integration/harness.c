/*
 * harness.c - fork-per-test runner with a wall-clock bound per test.
 *
 * The child reports "P\n", "S reason\n" or "F reason\n" on a pipe.  The
 * parent stops reading at the newline, not at EOF: a child whose threads are
 * stuck in an unanswered FUSE request cannot finish exiting, and must not
 * hang the suite.  For the same reason the child does not inherit the
 * runner's stdout/stderr: its stderr goes through a pipe that the parent
 * forwards while it waits (a stuck child must not keep a pipeline open).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int failed_once;

const char *sm_errname(int err)
{
	static _Thread_local char buf[32];
	switch (err) {
	case 0: return "no error";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENOSPC: return "ENOSPC";
	case ENOSYS: return "ENOSYS";
	case ENOTCONN: return "ENOTCONN";
	case ECONNABORTED: return "ECONNABORTED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EMSGSIZE: return "EMSGSIZE";
	default:
		snprintf(buf, sizeof buf, "errno %d", err);
		return buf;
	}
}

void sm_fail(struct sm_ctx *ctx, int with_errno, const char *fmt, ...)
{
	int saved = errno;
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&fail_lock);
	if (!failed_once) {
		failed_once = 1;
		if (with_errno)
			snprintf(ctx->reason, sizeof ctx->reason, "%s (%s: %s)",
				 msg, sm_errname(saved), strerror(saved));
		else
			snprintf(ctx->reason, sizeof ctx->reason, "%s", msg);
	}
	pthread_mutex_unlock(&fail_lock);
	errno = saved;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the child: run one test and report on fd. */
static void run_child(const struct sm_test *t, struct sm_ctx *ctx, int fd)
{
	char line[sizeof ctx->reason + 4];
	enum sm_result r = t->fn(ctx);
	size_t n;

	if (r == SM_FAIL && ctx->reason[0] == '\0')
		snprintf(ctx->reason, sizeof ctx->reason, "failed (no reason given)");
	for (char *p = ctx->reason; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(line, sizeof line, "%c %s\n",
		 r == SM_PASS ? 'P' : r == SM_SKIP ? 'S' : 'F', ctx->reason);
	n = strlen(line);
	if (write(fd, line, n) != (ssize_t)n)
		_exit(3);
	_exit(0);
}

/* Copies what is available on the child's stderr pipe to our stderr;
 * returns -1 once the pipe is at EOF (or broken). */
static int forward_err(int err_fd)
{
	char buf[4096];
	ssize_t r = read(err_fd, buf, sizeof buf);

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r <= 0)
		return -1;
	fwrite(buf, 1, (size_t)r, stderr);
	fflush(stderr);
	return 0;
}

/* Waits for the child's report line until deadline, forwarding its stderr;
 * returns the line's length, 0 on EOF without a line, -1 on timeout. */
static int read_report(int fd, int err_fd, char *buf, size_t size,
		       double deadline)
{
	size_t len = 0;

	for (;;) {
		double left = deadline - mono_s();
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = err_fd, .events = POLLIN } };
		int ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		int pr = poll(p, err_fd >= 0 ? 2 : 1, ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		if (err_fd >= 0 && p[1].revents && forward_err(err_fd) < 0)
			err_fd = -1;
		if (!p[0].revents)
			continue;
		ssize_t r = read(fd, buf + len, size - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		len += (size_t)r;
		buf[len] = '\0';
		if (memchr(buf, '\n', len) || len == size - 1)
			return (int)len;
	}
}

/* After the verdict: forwards the rest of the child's stderr for at most
 * a moment (a stuck child may never close it). */
static void drain_err(int err_fd, double seconds)
{
	double end = mono_s() + seconds;

	while (mono_s() < end) {
		struct pollfd p = { .fd = err_fd, .events = POLLIN };
		double left = end - mono_s();
		if (poll(&p, 1, left <= 0 ? 0 : (int)(left * 1000) + 1) <= 0)
			return;
		if (forward_err(err_fd) < 0)
			return;
	}
}

/* Reaps pid within seconds; kills it first if kill_first.  Returns 1 if
 * reaped (status filled), 0 if the child would not go away. */
static int reap(pid_t pid, int *status, double seconds, int kill_first)
{
	double end = mono_s() + seconds;

	if (kill_first)
		kill(pid, SIGKILL);
	while (mono_s() < end) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int open_master(const char *dir)
{
	char path[300];
	snprintf(path, sizeof path, "%s/synchmess", dir);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Puts the daemon's parameters back if a test left them changed. */
static void restore_params(int master, const struct synchmess_params *want,
			   const char *test)
{
	struct synchmess_params now = { 0 };

	if (master < 0 || ioctl(master, IOCTL_GET_PARAMS, &now) != 0)
		return;
	if (now.max_message_size == want->max_message_size &&
	    now.max_storage_size == want->max_storage_size)
		return;
	struct synchmess_params p = *want;
	if (ioctl(master, IOCTL_SET_PARAMS, &p) != 0)
		fprintf(stderr, "# could not restore the parameters after %s: %s\n",
			test, strerror(errno));
	else
		fprintf(stderr, "# restored the parameters changed by %s\n", test);
}

int sm_run(const struct sm_test *tests, size_t ntests, struct sm_ctx *proto,
	   const char *filter)
{
	int passed = 0, failed = 0;
	unsigned next_desc = 1;
	struct synchmess_params initial = { 0 };
	int master = open_master(proto->dev_dir);

	if (master >= 0 && ioctl(master, IOCTL_GET_PARAMS, &initial) != 0) {
		close(master);
		master = -1;
	}

	for (size_t i = 0; i < ntests; i++) {
		const struct sm_test *t = &tests[i];
		struct sm_ctx ctx = *proto;
		char report[sizeof ctx.reason + 8];
		int fds[2], status = 0;
		pid_t pid;

		if (filter && !strstr(t->name, filter))
			continue;

		ctx.ngroups = t->ngroups;
		ctx.reason[0] = '\0';
		for (unsigned g = 0; g < t->ngroups; g++) {
			if (t->ngroups == MAX_NUM_GROUPS) {
				ctx.groups[g] = g + 1;
			} else {
				ctx.groups[g] = next_desc;
				next_desc = next_desc % MAX_NUM_GROUPS + 1;
			}
		}

		int errs[2];
		if (pipe2(fds, O_CLOEXEC) != 0 || pipe2(errs, O_CLOEXEC) != 0) {
			perror("pipe2");
			return failed + 1;
		}
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return failed + 1;
		}
		if (pid == 0) {
			int null = open("/dev/null", O_RDWR);
			close(fds[0]);
			close(errs[0]);
			if (master >= 0)
				close(master);
			if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
			    dup2(null, STDOUT_FILENO) < 0 ||
			    dup2(errs[1], STDERR_FILENO) < 0)
				_exit(4);
			run_child(t, &ctx, fds[1]);
		}
		close(fds[1]);
		close(errs[1]);

		int n = read_report(fds[0], errs[0], report, sizeof report,
				    mono_s() + t->timeout_s);
		close(fds[0]);
		if (n < 0) {
			printf("FAIL %s: timed out after %u s (blocked in the daemon?)\n",
			       t->name, t->timeout_s);
			failed++;
			if (!reap(pid, &status, 3, 1))
				fprintf(stderr, "# %s: child %d cannot be killed "
					"(stuck in an unanswered request)\n",
					t->name, (int)pid);
		} else if (n == 0) {
			reap(pid, &status, 3, 0);
			if (WIFSIGNALED(status))
				printf("FAIL %s: test process died of signal %d (%s)\n",
				       t->name, WTERMSIG(status),
				       strsignal(WTERMSIG(status)));
			else
				printf("FAIL %s: test process exited without a verdict\n",
				       t->name);
			failed++;
		} else {
			char *nl = strchr(report, '\n');
			if (nl)
				*nl = '\0';
			if (report[0] == 'P') {
				printf("PASS %s\n", t->name);
				passed++;
			} else if (report[0] == 'S') {
				printf("SKIP %s: %s\n", t->name, report + 2);
			} else {
				printf("FAIL %s: %s\n", t->name, report + 2);
				failed++;
			}
			if (!reap(pid, &status, 3, 0) &&
			    !reap(pid, &status, 3, 1))
				fprintf(stderr, "# %s: child %d cannot be killed "
					"(stuck in an unanswered request)\n",
					t->name, (int)pid);
		}
		drain_err(errs[0], 0.2);
		close(errs[0]);
		fflush(stdout);
		restore_params(master, &initial, t->name);
	}

	printf("%d passed, %d failed\n", passed, failed);
	fflush(stdout);
	if (master >= 0)
		close(master);
	return failed;
}
