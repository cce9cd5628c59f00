/*
 * hostile_client.c - synchmess-hostile: the load a hostile local user can
 * put on the daemon, one subcommand each, for tests/integration/hostile-checks
 * (which measures the daemon around it):
 *   fill DIR FIRST N SIZE     install groups FIRST..FIRST+N-1 and write SIZE-byte
 *                             messages into each until EPERM; prints the count
 *   drain DIR FIRST N         read every group empty; prints the count
 *   epoll-churn DIR GROUP K   epoll_ctl ADD then DEL on one group fd, K times
 *   bad-installs DIR K        K installs whose group_t lies on a read-only page
 * Exit status 0 when every call behaved as the ABI says, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "synchmess_interface.h"

static int open_group(const char *dir, unsigned d)
{
	char path[512];
	struct group_t g = { .descriptor = d };

	snprintf(path, sizeof path, "%s/synchmess", dir);
	int m = open(path, O_RDONLY);
	if (m < 0 || ioctl(m, IOCTL_INSTALL_GROUP, &g) != 0) {
		perror("install");
		return -1;
	}
	close(m);
	for (int i = 0; i < 1000 && access(g.device_path, R_OK | W_OK) != 0; i++)
		usleep(10000);
	int fd = open(g.device_path, O_RDWR);
	if (fd < 0)
		perror(g.device_path);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: see the header of hostile_client.c\n");
		return 2;
	}
	const char *cmd = argv[1], *dir = argv[2];
	unsigned long a = strtoul(argv[3], NULL, 0), b = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	static char buf[65536];

	if (strcmp(cmd, "fill") == 0 && argc == 6) {
		unsigned long size = strtoul(argv[5], NULL, 0), count = 0;
		memset(buf, 'f', sizeof buf);
		for (unsigned long d = a; d < a + b; d++) {
			int fd = open_group(dir, (unsigned)d);
			if (fd < 0)
				return 1;
			while (write(fd, buf, size) == (ssize_t)size)
				count++;
			if (errno != EPERM) {
				perror("write");
				return 1;
			}
			close(fd);
		}
		printf("%lu\n", count);
		return 0;
	}
	if (strcmp(cmd, "drain") == 0 && argc == 5) {
		unsigned long count = 0;
		for (unsigned long d = a; d < a + b; d++) {
			int fd = open_group(dir, (unsigned)d);
			if (fd < 0)
				return 1;
			while (read(fd, buf, sizeof buf) > 0)
				count++;
			close(fd);
		}
		printf("%lu\n", count);
		return 0;
	}
	if (strcmp(cmd, "epoll-churn") == 0 && argc == 5) {
		int fd = open_group(dir, (unsigned)a), ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		if (fd < 0 || ep < 0)
			return 1;
		for (unsigned long i = 0; i < b; i++) {
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0 ||
			    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) != 0) {
				perror("epoll_ctl");
				return 1;
			}
		}
		return 0;
	}
	if (strcmp(cmd, "bad-installs") == 0 && argc == 4) {
		char path[512];
		snprintf(path, sizeof path, "%s/synchmess", dir);
		int m = open(path, O_RDONLY);
		struct group_t *g = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m < 0 || g == MAP_FAILED)
			return 1;
		g->descriptor = 1;
		mprotect(g, 4096, PROT_READ);
		for (unsigned long i = 0; i < a; i++) {
			errno = 0;
			if (ioctl(m, IOCTL_INSTALL_GROUP, g) != -1 || errno != EFAULT) {
				fprintf(stderr, "install into a read-only struct: %s\n", strerror(errno));
				return 1;
			}
		}
		return 0;
	}
	fprintf(stderr, "synchmess-hostile: bad arguments\n");
	return 2;
}
