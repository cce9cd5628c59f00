/*
 * fsync_client.c - an unmodified client of the original module: it flushes
 * delayed messages with plain fsync(fd).
 *
 *   fsync-client [--dev-dir DIR] [--descriptor N]
 *
 * Installs group N (default 64), sets a 60000 ms delay, writes three
 * messages, fsync()s, and requires fsync to return 0 and the three messages
 * to be readable at once, in order; then resets the delay.  Exits 0 on
 * success.  On CUSE this needs the fsync shim (LD_PRELOAD of
 * libsynchmess-fsync.so, or the synchmess-fsync wrapper).  Bounded by
 * alarm(): a hang kills it with SIGALRM.
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
	fprintf(stderr, "fsync-client: FAIL %s (%s)\n", what, strerror(errno));
	return 1;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev-dir", required_argument, NULL, 'd' },
		{ "descriptor", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *msgs[] = { "first", "second", "third" };
	const char *dir = getenv("SYNCHMESS_DEV_DIR");
	unsigned descriptor = 64, delay;
	char path[300], buf[2048];
	struct group_t group;
	int c, master, fd, waited = 0;
	ssize_t r;

	if (!dir || !*dir)
		dir = "/dev/synch";
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd') {
			dir = optarg;
		} else if (c == 'n') {
			descriptor = (unsigned)strtoul(optarg, NULL, 10);
		} else {
			fprintf(stderr, "usage: fsync-client [--dev-dir DIR] "
				"[--descriptor N]\n");
			return 2;
		}
	}
	alarm(20);

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
		pause_ms(1);
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
	for (int i = 0; i < 3; i++)
		if (write(fd, msgs[i], strlen(msgs[i])) != (ssize_t)strlen(msgs[i]))
			return fail("delayed write");
	if (read(fd, buf, sizeof buf) != 0) {
		fprintf(stderr, "fsync-client: FAIL a delayed message was readable "
			"before fsync\n");
		return 1;
	}
	if (fsync(fd) != 0)
		return fail("fsync on the group");
	for (int i = 0; i < 3; i++) {
		r = read(fd, buf, sizeof buf);
		if (r != (ssize_t)strlen(msgs[i]) || memcmp(buf, msgs[i], (size_t)r) != 0) {
			fprintf(stderr, "fsync-client: FAIL read %d after fsync returned "
				"%zd, expected \"%s\" (%s)\n", i, r, msgs[i],
				r < 0 ? strerror(errno) : "wrong message");
			return 1;
		}
	}
	if (read(fd, buf, sizeof buf) != 0) {
		fprintf(stderr, "fsync-client: FAIL extra message after the three\n");
		return 1;
	}
	delay = 0;
	if (ioctl(fd, IOCTL_SET_SEND_DELAY, &delay) != 0)
		return fail("IOCTL_SET_SEND_DELAY 0");
	close(fd);
	printf("fsync-client: ok (fsync published 3 delayed messages in order)\n");
	return 0;
}
