/*
 * probe.c - the smallest real client of the installed service, run inside
 * the booted test system (as an unprivileged user).
 *
 *   synchmess-package-probe DEV_DIR GROUP
 *
 * Installs GROUP through DEV_DIR/synchmess (opened read-only, as the master
 * is 0444), checks the path written back, waits up to 10 s until the group
 * device is readable and writable for this user (udev applies the mode, as
 * clients of the original module expect), then writes one message and
 * reads it back. Prints one line; exit status 0 only on success.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

static int fail(const char *what) {
	printf("probe: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV_DIR GROUP\n", argv[0]);
		return 2;
	}
	char master[300], expected[300];
	snprintf(master, sizeof master, "%s/synchmess", argv[1]);
	struct group_t group = {.descriptor = (unsigned)strtoul(argv[2], NULL, 10)};
	snprintf(expected, sizeof expected, "%s/synchmess%u", argv[1], group.descriptor);

	int m = open(master, O_RDONLY);
	if (m < 0) return fail("open master");
	if (ioctl(m, IOCTL_INSTALL_GROUP, &group) != 0) return fail("IOCTL_INSTALL_GROUP");
	close(m);
	if (strcmp(group.device_path, expected) != 0) {
		printf("probe: device_path is '%.256s', expected '%s'\n", group.device_path, expected);
		return 1;
	}

	const struct timespec tick = {0, 20 * 1000 * 1000};
	int waited = 0;
	while (access(group.device_path, R_OK | W_OK) != 0) {
		if (++waited > 500) return fail("access(R_OK|W_OK) on the group device after 10 s");
		nanosleep(&tick, NULL);
	}

	int g = open(group.device_path, O_RDWR);
	if (g < 0) return fail("open group");
	static const char msg[] = "package probe";
	if (write(g, msg, sizeof msg) != (ssize_t)sizeof msg) return fail("write");
	char buf[64] = {0};
	ssize_t n = read(g, buf, sizeof buf);
	if (n != (ssize_t)sizeof msg || memcmp(buf, msg, sizeof msg) != 0) {
		printf("probe: read %zd bytes '%.*s', expected the message back\n", n, (int)(n > 0 ? n : 0), buf);
		return 1;
	}
	close(g);
	printf("probe: group %u at %s works\n", group.descriptor, group.device_path);
	return 0;
}
