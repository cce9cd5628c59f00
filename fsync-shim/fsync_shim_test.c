/*
 * fsync_shim_test.c - unit test of libsynchmess-fsync.so on a host without
 * CUSE; run with the shim preloaded (ctest runs it through the
 * synchmess-fsync wrapper).
 *
 * Checks: the shim is what the program's fsync/fdatasync resolve to; on a
 * regular file, a pipe, a closed fd and /dev/null (no synchmess master) both
 * behave exactly as the raw system calls, errno included, and errno is
 * untouched on success; and, when root can mknod a fake master with the
 * major of /dev/null, fsync/fdatasync on /dev/null take the ioctl path
 * (ENOTTY from /dev/null proves it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "test_expect.h"

/* fsync (or fdatasync) through the shim and through the raw syscall must
 * agree on result and errno. */
static void same_as_raw(int fd, const char *what)
{
	int r1, e1, r2, e2;

	errno = 12345;
	r1 = fsync(fd);
	e1 = errno;
	errno = 12345;
	r2 = (int)syscall(SYS_fsync, fd);
	e2 = errno;
	EXPECT(r1 == r2 && e1 == e2, "fsync(%s): shim %d/%d, raw %d/%d", what, r1,
	       e1, r2, e2);

	errno = 12345;
	r1 = fdatasync(fd);
	e1 = errno;
	errno = 12345;
	r2 = (int)syscall(SYS_fdatasync, fd);
	e2 = errno;
	EXPECT(r1 == r2 && e1 == e2, "fdatasync(%s): shim %d/%d, raw %d/%d", what,
	       r1, e1, r2, e2);
}

static void test_preloaded(void)
{
	Dl_info info;

	EXPECT(dladdr((void *)fsync, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libsynchmess-fsync.so"),
	       "fsync resolves to %s, not the shim (run under synchmess-fsync)",
	       info.dli_fname ? info.dli_fname : "?");
	EXPECT(dladdr((void *)fdatasync, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libsynchmess-fsync.so"),
	       "fdatasync resolves to %s, not the shim",
	       info.dli_fname ? info.dli_fname : "?");
}

static void test_regular_file(void)
{
	char path[] = "/tmp/fsync-shim-test-XXXXXX";
	int fd = mkstemp(path);

	EXPECT(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd < 0)
		return;
	unlink(path);
	EXPECT(write(fd, "data", 4) == 4, "write: %s", strerror(errno));
	errno = 777;
	EXPECT(fsync(fd) == 0, "fsync(file) failed: %s", strerror(errno));
	EXPECT(errno == 777, "fsync(file) changed errno to %d", errno);
	errno = 777;
	EXPECT(fdatasync(fd) == 0, "fdatasync(file) failed: %s", strerror(errno));
	EXPECT(errno == 777, "fdatasync(file) changed errno to %d", errno);
	same_as_raw(fd, "regular file");
	close(fd);
}

static void test_pipe_and_bad_fd(void)
{
	int p[2];

	EXPECT(pipe(p) == 0, "pipe: %s", strerror(errno));
	errno = 0;
	EXPECT(fsync(p[1]) == -1 && errno == EINVAL, "fsync(pipe) %s",
	       strerror(errno));
	same_as_raw(p[0], "pipe read end");
	same_as_raw(p[1], "pipe write end");
	close(p[0]);
	close(p[1]);
	errno = 0;
	EXPECT(fsync(p[0]) == -1 && errno == EBADF, "fsync(closed fd) %s",
	       strerror(errno));
	same_as_raw(p[0], "closed fd");
	same_as_raw(-1, "fd -1");
}

/* With no synchmess master, a char device goes to the real fsync. */
static void test_char_device_no_master(void)
{
	int fd = open("/dev/null", O_WRONLY);

	EXPECT(fd >= 0, "open /dev/null: %s", strerror(errno));
	if (fd < 0)
		return;
	setenv("SYNCHMESS_DEV_DIR", "/nonexistent-synchmess-dir", 1);
	same_as_raw(fd, "/dev/null without a master");
	close(fd);
}

/* A fake master with /dev/null's major: /dev/null now looks like a group,
 * so the shim sends IOCTL_FLUSH_DELAYED_MESSAGES, which /dev/null refuses
 * with ENOTTY.  Needs mknod (root); skipped otherwise. */
static void test_char_device_fake_master(void)
{
	char dir[] = "/tmp/fsync-shim-master-XXXXXX", node[64];
	struct stat st;
	int fd;

	if (stat("/dev/null", &st) != 0 || !mkdtemp(dir))
		return;
	snprintf(node, sizeof node, "%s/synchmess", dir);
	if (mknod(node, S_IFCHR | 0444, makedev(major(st.st_rdev), 0)) != 0) {
		printf("SKIP fake master: mknod: %s\n", strerror(errno));
		rmdir(dir);
		return;
	}
	setenv("SYNCHMESS_DEV_DIR", dir, 1);
	fd = open("/dev/null", O_WRONLY);
	EXPECT(fd >= 0, "open /dev/null: %s", strerror(errno));
	if (fd >= 0) {
		errno = 0;
		EXPECT(fsync(fd) == -1 && errno == ENOTTY,
		       "fsync(/dev/null) with a fake master: %s, expected ENOTTY "
		       "from the flush ioctl", strerror(errno));
		errno = 0;
		EXPECT(fdatasync(fd) == -1 && errno == ENOTTY,
		       "fdatasync(/dev/null) with a fake master: %s", strerror(errno));
		close(fd);
	}
	/* Other fds are unaffected while a master is known. */
	test_regular_file();
	test_pipe_and_bad_fd();

	unlink(node);
	rmdir(dir);
}

int main(void)
{
	test_preloaded();
	test_regular_file();
	test_pipe_and_bad_fd();
	test_char_device_no_master();
	test_char_device_fake_master();
	printf("%s\n", failures ? "fsync shim test: FAILED" : "fsync shim test: ok");
	return failures ? 1 : 0;
}
