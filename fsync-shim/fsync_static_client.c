/*
 * fsync_static_client.c - fsync-static-client, a statically linked client of
 * the original module (its test.c pattern): it flushes delayed messages with
 * plain fsync(), so on CUSE it needs synchmess-fsync's seccomp supervisor
 * (LD_PRELOAD cannot reach a static binary).
 *
 *   fsync-static-client [--dev-dir DIR] [--descriptor N] [--require-supervisor]
 *
 * Installs group N (default 60), sets a 60000 ms send delay, then twice:
 * writes a message, checks that nothing is readable yet, calls fsync() (the
 * second time fdatasync()), which must return 0, and read() must return the
 * message at once.  Then fsync() and fdatasync() on a regular file must still
 * return 0 (the supervisor lets other fds through to the kernel).  With
 * --require-supervisor it also fails unless it runs under a seccomp filter
 * (so a run on FUSE, where fsync works natively, proves the supervisor let
 * it through rather than that nobody was in the way).  Exits 0 on success;
 * bounded by alarm(20).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

static int fail(const char *what)
{
	fprintf(stderr, "fsync-static-client: FAIL %s (%s)\n", what, strerror(errno));
	return 1;
}

/* The number of seccomp filters on this process (/proc/self/status), or -1. */
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

/* Writes msg delayed, flushes with fsync or fdatasync, reads it back. */
static int round_trip(int fd, const char *msg, int data_only)
{
	const char *call = data_only ? "fdatasync" : "fsync";
	char buf[2048];
	ssize_t r;
	int rc;

	if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
		return fail("delayed write");
	r = read(fd, buf, sizeof buf);
	if (r != 0) {
		fprintf(stderr, "fsync-static-client: FAIL read before %s returned %zd, "
			"expected 0 (the message is delayed)\n", call, r);
		return 1;
	}
	errno = 0;
	rc = data_only ? fdatasync(fd) : fsync(fd);
	printf("fsync-static-client: %s on the group = %d (%s)\n", call, rc,
	       rc ? strerror(errno) : "ok");
	r = read(fd, buf, sizeof buf);
	printf("fsync-static-client: read after %s = %zd\n", call, r);
	if (rc != 0) {
		fprintf(stderr, "fsync-static-client: FAIL %s on the group: %s\n", call,
			strerror(errno));
		return 1;
	}
	if (r != (ssize_t)strlen(msg) || memcmp(buf, msg, (size_t)r) != 0) {
		fprintf(stderr, "fsync-static-client: FAIL read after %s returned %zd, "
			"expected \"%s\" at once\n", call, r, msg);
		return 1;
	}
	return 0;
}

static int regular_file(void)
{
	char path[] = "/tmp/fsync-static-client-XXXXXX";
	int fd = mkstemp(path), bad = 0;

	if (fd < 0)
		return fail("mkstemp");
	unlink(path);
	if (write(fd, "data", 4) != 4)
		bad = fail("write to a regular file");
	errno = 0;
	if (fsync(fd) != 0)
		bad = fail("fsync on a regular file");
	if (fdatasync(fd) != 0)
		bad = fail("fdatasync on a regular file");
	close(fd);
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev-dir", required_argument, NULL, 'd' },
		{ "descriptor", required_argument, NULL, 'n' },
		{ "require-supervisor", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("SYNCHMESS_DEV_DIR");
	unsigned descriptor = 60, delay;
	char path[300], buf[2048];
	struct group_t group;
	int c, master, fd, waited = 0, require_supervisor = 0, filters, bad;
	struct timespec ms = { 0, 1000000 };
	ssize_t r;

	if (!dir || !*dir)
		dir = "/dev/synch";
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd') {
			dir = optarg;
		} else if (c == 'n') {
			descriptor = (unsigned)strtoul(optarg, NULL, 10);
		} else if (c == 's') {
			require_supervisor = 1;
		} else {
			fprintf(stderr, "usage: fsync-static-client [--dev-dir DIR] "
				"[--descriptor N] [--require-supervisor]\n");
			return 2;
		}
	}
	alarm(20);
	setvbuf(stdout, NULL, _IOLBF, 0);
	filters = seccomp_filters();
	printf("fsync-static-client: %d seccomp filter(s) on this process\n", filters);

	snprintf(path, sizeof path, "%s/synchmess", dir);
	master = open(path, O_RDONLY);
	if (master < 0)
		return fail("open master");
	memset(&group, 0, sizeof group);
	group.descriptor = descriptor;
	if (ioctl(master, IOCTL_INSTALL_GROUP, &group) != 0)
		return fail("IOCTL_INSTALL_GROUP");
	close(master);
	while (access(group.device_path, R_OK | W_OK) != 0) {
		if (++waited > 5000)
			return fail("group device never became accessible");
		nanosleep(&ms, NULL);
	}
	fd = open(group.device_path, O_RDWR);
	if (fd < 0)
		return fail("open group");

	/* Start clean: nothing pending, nothing queued. */
	if (ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES) != 0)
		return fail("IOCTL_REVOKE_DELAYED_MESSAGES");
	while ((r = read(fd, buf, sizeof buf)) > 0)
		;
	if (r < 0)
		return fail("draining read");
	delay = 60000;
	if (ioctl(fd, IOCTL_SET_SEND_DELAY, &delay) != 0)
		return fail("IOCTL_SET_SEND_DELAY 60000");

	bad = round_trip(fd, "static-fsync", 0) || round_trip(fd, "static-fdatasync", 1);

	delay = 0;
	ioctl(fd, IOCTL_REVOKE_DELAYED_MESSAGES);
	if (ioctl(fd, IOCTL_SET_SEND_DELAY, &delay) != 0 && !bad)
		bad = fail("IOCTL_SET_SEND_DELAY 0");
	close(fd);
	bad |= regular_file();
	if (require_supervisor && filters < 1) {
		fprintf(stderr, "fsync-static-client: FAIL not under a seccomp filter "
			"(run it under synchmess-fsync)\n");
		bad = 1;
	}
	if (bad)
		return 1;
	printf("fsync-static-client: ok (fsync and fdatasync published delayed "
	       "messages at once; fsync on a regular file works)\n");
	return 0;
}
