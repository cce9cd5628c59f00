/*
 * fast_wrapper_check.c - run by ctest under the synchmess-fast wrapper:
 * the library is preloaded in front of an LD_PRELOAD the test set
 * (argv[1], which must stay loaded), and ordinary fds keep working through
 * it: pipes across dup/dup2/fcntl/close, a file opened, read, closed and
 * reopened, a fork whose child writes, stdio.  No daemon (no master at
 * SYNCHMESS_DEV_DIR): every fd is "not ours".  Exit 0 when all holds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsync-shim/test_expect.h"

static int loaded(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	int found = 0;

	while (f && fgets(line, sizeof line, f))
		found |= strstr(line, name) != NULL;
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	int p[2], d, status = -1;
	char buf[16];
	pid_t child;

	EXPECT(loaded("libsynchmess-fast.so"), "libsynchmess-fast.so is not loaded");
	EXPECT(argc < 2 || loaded(argv[1]), "the earlier LD_PRELOAD %s was dropped", argv[1]);
	EXPECT(pipe(p) == 0, "pipe");
	d = dup(p[1]);
	EXPECT(write(d, "ab", 2) == 2 && read(p[0], buf, sizeof buf) == 2 && memcmp(buf, "ab", 2) == 0,
	       "pipe through a dup");
	EXPECT(dup2(p[0], 50) == 50 && fcntl(d, F_DUPFD_CLOEXEC, 60) >= 60, "dup2, F_DUPFD_CLOEXEC");
	close(d);
	child = fork();
	if (child == 0)
		_exit(write(p[1], "child", 5) == 5 ? 0 : 1);
	EXPECT(waitpid(child, &status, 0) == child && status == 0, "child wrote");
	EXPECT(read(50, buf, sizeof buf) == 5 && memcmp(buf, "child", 5) == 0, "read through dup2");
	for (int i = 0; i < 2; i++) {
		int fd = open("/proc/self/stat", O_RDONLY);
		EXPECT(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf, "file read %d", i);
		close(fd);
	}
	printf("fast_wrapper_check: %s\n", failures ? "FAILED" : "ok");
	return failures != 0;
}
