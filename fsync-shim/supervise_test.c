/*
 * supervise_test.c - unit test of synchmess-fsync-supervise on a static
 * program; needs no daemon and no CUSE.
 *
 *   supervise_test WRAPPER     (WRAPPER = the synchmess-fsync script)
 *
 * The test (statically linked) runs itself under WRAPPER, which must pick
 * the supervisor for it, in three phases:
 * - plain (no master): fsync/fdatasync on a regular file succeed with errno
 *   untouched; a pipe gives EINVAL, a closed fd and -1 EBADF, /dev/null
 *   EINVAL: the supervisor let the kernel run them (CONTINUE).
 * - fake master (root only: mknod): a master node with /dev/null's major
 *   makes /dev/null look like a group device, so the supervisor issues
 *   IOCTL_FLUSH_DELAYED_MESSAGES on it, which /dev/null refuses with ENOTTY:
 *   ENOTTY proves the supervisor answered.  Checked from the main thread
 *   (libc and raw syscall), another thread, a forked child, an orphaned
 *   grandchild and after exec; other fds still reach the kernel.
 * - unsupervised control (SYNCHMESS_FSYNC_SUPERVISE=never, fake master):
 *   no filter, and fsync on /dev/null is the kernel's EINVAL, so the ENOTTY
 *   above cannot come from anywhere but the supervisor.
 * Every phase also checks whether a seccomp filter is on the process.
 *
 *   supervise_test --print-filters [ANY...]
 *
 * prints the number of seccomp filters on the process (for supervise-check).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_expect.h"

/* The number of seccomp filters on this process, or -1. */
static int seccomp_filters(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* fsync, fdatasync and both raw syscalls on fd: each must give want_rc and,
 * when it fails, want_errno; on success errno stays as it was. */
static void expect_sync(int fd, int want_rc, int want_errno, const char *what)
{
	static const char *names[] = { "fsync", "fdatasync", "syscall(fsync)",
				       "syscall(fdatasync)" };

	for (int i = 0; i < 4; i++) {
		int rc, e;

		errno = 777;
		switch (i) {
		case 0: rc = fsync(fd); break;
		case 1: rc = fdatasync(fd); break;
		case 2: rc = (int)syscall(SYS_fsync, fd); break;
		default: rc = (int)syscall(SYS_fdatasync, fd); break;
		}
		e = errno;
		EXPECT(rc == want_rc && e == (want_rc == 0 ? 777 : want_errno),
		       "%s(%s) = %d errno %d (%s), want %d errno %d", names[i], what, rc,
		       e, strerror(e), want_rc, want_rc == 0 ? 777 : want_errno);
	}
}

/* The kernel's answers: regular file 0, pipe EINVAL, bad fds EBADF. */
static void other_fds_reach_the_kernel(void)
{
	char path[] = "/tmp/supervise-test-XXXXXX";
	int fd = mkstemp(path), p[2];

	EXPECT(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd >= 0) {
		unlink(path);
		EXPECT(write(fd, "data", 4) == 4, "write: %s", strerror(errno));
		expect_sync(fd, 0, 0, "regular file");
		close(fd);
	}
	EXPECT(pipe(p) == 0, "pipe: %s", strerror(errno));
	expect_sync(p[1], -1, EINVAL, "pipe");
	close(p[0]);
	close(p[1]);
	expect_sync(p[0], -1, EBADF, "closed fd");
	expect_sync(-1, -1, EBADF, "fd -1");
}

static int open_null(void)
{
	int fd = open("/dev/null", O_WRONLY);

	EXPECT(fd >= 0, "open /dev/null: %s", strerror(errno));
	return fd;
}

static void *thread_sync(void *arg)
{
	expect_sync(*(int *)arg, -1, ENOTTY, "/dev/null from a thread");
	return NULL;
}

/* Checks that fsync on fd gives ENOTTY in a child (or, orphan != 0, in a
 * grandchild whose parent has already exited). */
static void in_child(int fd, int orphan, const char *what)
{
	int st, p[2];
	char c;
	pid_t pid;

	EXPECT(pipe(p) == 0, "pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		failures = 0;
		if (orphan) {
			pid_t parent = getpid();
			struct timespec ms = { 0, 1000000 };
			int i = 0;

			if (fork() != 0)
				_exit(0);
			/* Wait (up to 10 s) until the parent has gone and this
			 * process was reparented (to the supervisor, a subreaper). */
			while (getppid() == parent && ++i < 10000)
				nanosleep(&ms, NULL);
			EXPECT(getppid() != parent, "still not reparented after 10 s");
		}
		expect_sync(fd, -1, ENOTTY, what);
		c = failures ? 'F' : 'K';
		_exit(write(p[1], &c, 1) == 1 ? 0 : 1);
	}
	close(p[1]);
	EXPECT(pid > 0, "fork: %s", strerror(errno));
	if (pid > 0)
		EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		       "%s: child status %#x", what, st);
	/* The grandchild's answer: read waits for it (EOF if it died). */
	EXPECT(read(p[0], &c, 1) == 1 && c == 'K', "%s: the checks failed there", what);
	close(p[0]);
}

static void fake_master_phase(char *self)
{
	int fd = open_null(), st;
	pthread_t t;
	char arg[16];
	pid_t pid;

	if (fd < 0)
		return;
	expect_sync(fd, -1, ENOTTY, "/dev/null as a group");
	EXPECT(pthread_create(&t, NULL, thread_sync, &fd) == 0, "pthread_create");
	pthread_join(t, NULL);
	in_child(fd, 0, "/dev/null in a child");
	in_child(fd, 1, "/dev/null in an orphaned grandchild");
	snprintf(arg, sizeof arg, "%d", fd);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execl(self, self, "--after-exec", arg, (char *)NULL);
		_exit(127);
	}
	EXPECT(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       WEXITSTATUS(st) == 0, "after exec: status %#x", st);
	/* Other fds are unaffected while a master is known. */
	other_fds_reach_the_kernel();
	close(fd);
}

/* Runs WRAPPER self PHASE with SYNCHMESS_DEV_DIR=dev_dir; its exit status. */
static int run_phase(const char *wrapper, char *self, const char *phase,
		     const char *dev_dir, const char *mode)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setenv("SYNCHMESS_DEV_DIR", dev_dir, 1);
		setenv("SYNCHMESS_FSYNC_SUPERVISE", mode, 1);
		execl(wrapper, wrapper, self, phase, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	char self[4096], dir[] = "/tmp/supervise-master-XXXXXX", node[64];
	int base = seccomp_filters(), fd, rc;
	struct stat st;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "--print-filters") == 0) {
		printf("%d\n", base); /* for supervise-check */
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--after-exec") == 0) {
		expect_sync(atoi(argv[2]), -1, ENOTTY, "/dev/null after exec");
		return failures ? 1 : 0;
	}
	if (argc == 2 && argv[1][0] == '-') {
		if (strcmp(argv[1], "--unsupervised") == 0) {
			EXPECT(base == 0, "%d seccomp filters with SUPERVISE=never", base);
			fd = open_null();
			expect_sync(fd, -1, EINVAL, "/dev/null unsupervised");
			return failures ? 1 : 0;
		}
		EXPECT(base >= 1, "not under a seccomp filter (Seccomp_filters %d): "
		       "the wrapper did not supervise a static program", base);
		if (strcmp(argv[1], "--plain") == 0) {
			other_fds_reach_the_kernel();
			fd = open_null();
			expect_sync(fd, -1, EINVAL, "/dev/null without a master");
		} else {
			fake_master_phase(argv[0]);
		}
		return failures ? 1 : 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: supervise_test WRAPPER\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 2;
	self[n] = '\0';

	rc = run_phase(argv[1], self, "--plain", "/nonexistent-synchmess-dir", "auto");
	EXPECT(rc == 0, "plain phase: status %d", rc);

	if (stat("/dev/null", &st) != 0 || !mkdtemp(dir))
		return 2;
	snprintf(node, sizeof node, "%s/synchmess", dir);
	if (mknod(node, S_IFCHR | 0444, makedev(major(st.st_rdev), 0)) != 0) {
		printf("SKIP fake master phases: mknod: %s (needs root)\n", strerror(errno));
	} else {
		rc = run_phase(argv[1], self, "--fake-master", dir, "auto");
		EXPECT(rc == 0, "fake master phase: status %d", rc);
		rc = run_phase(argv[1], self, "--unsupervised", dir, "never");
		EXPECT(rc == 0, "unsupervised control: status %d", rc);
		unlink(node);
	}
	rmdir(dir);
	printf("%s\n", failures ? "supervise test: FAILED" : "supervise test: ok");
	return failures ? 1 : 0;
}
