/*
 * cluster-limits - the storage rows of abi.md as they hold in a cluster
 * (docs/abi.md "Cluster groups"), through the devices of two synchmessd
 * "hosts" of one NATS cluster; run by tests/cluster/run as root.
 *
 *   cluster-limits DIR1 DIR2 GROUP NEW_GROUP
 *
 * Replaces the suite's rows that differ in a cluster:
 *  storage  (group_storage_limit) 1024-byte writes alternating between the
 *           hosts fill GROUP to EPERM on both, with fewer messages than the
 *           n + 64 count would allow (JetStream counts more); one read frees
 *           room for exactly one more; everything comes back in order.
 *  delayed  (delay_storage_reserved_at_write) with a delay, delayed writes
 *           on both hosts fill GROUP to EPERM with exactly as many messages:
 *           reserved when written, cluster-wide; nothing is readable;
 *           SET_SEND_DELAY fails EPERM on the other host; a flush there
 *           publishes all of them; then the room is free again.
 *  params   (params_shrink_storage_keeps_messages) SET_PARAMS on host 1
 *           reaches host 2; a smaller storage limit keeps every stored
 *           message and applies to NEW_GROUP, created afterwards; the
 *           larger one set on host 2 grows NEW_GROUP's stream.
 * Runs with max_storage_size = STORAGE (below), restored at the end.
 * Prints "PASS name" / "FAIL name: why" per check; exit 0 if all pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "synchmess_interface.h"

#define MSG 1024
/* The storage limit the checks run with (set on host 1 first, so that the
 * groups' streams are created with it; put back at the end): small, so a
 * group fills with few messages. */
#define STORAGE 65536
/* Messages of MSG bytes the n + 64 count would hold. */
#define N64 (STORAGE / (MSG + 64))

static const char *dirs[2];
static char why[512];

#define CHECK(cond, ...)                                            \
	do {                                                        \
		if (!(cond)) {                                      \
			snprintf(why, sizeof why, __VA_ARGS__);     \
			return -1;                                  \
		}                                                   \
	} while (0)

static int master(int host)
{
	char path[512];
	snprintf(path, sizeof path, "%s/synchmess", dirs[host]);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int group_open(int host, unsigned desc)
{
	struct group_t g = { .descriptor = desc };
	int m = master(host), fd;
	if (m < 0)
		return -1;
	if (ioctl(m, IOCTL_INSTALL_GROUP, &g) != 0) {
		close(m);
		return -1;
	}
	close(m);
	for (int i = 0; i < 5000 && access(g.device_path, R_OK | W_OK) != 0; i++)
		usleep(1000);
	fd = open(g.device_path, O_RDWR | O_CLOEXEC);
	return fd;
}

static int set_delay(int fd, unsigned ms)
{
	return ioctl(fd, IOCTL_SET_SEND_DELAY, &ms);
}

/* A read frees its message's room shortly after it returns: JetStream
 * removes an acknowledged message from a replicated work-queue stream
 * after the acknowledgement (docs/abi.md).  So a write that fails EPERM is
 * tried again for up to ROOM_WAIT_MS before the group counts as full. */
#define ROOM_WAIT_MS 2000

static int write_room(int fd, const void *buf, size_t n)
{
	for (int waited = 0;; waited += 10) {
		errno = 0;
		ssize_t r = write(fd, buf, n);
		if (r == (ssize_t)n || errno != EPERM || waited >= ROOM_WAIT_MS)
			return r == (ssize_t)n ? 0 : -1;
		usleep(10000);
	}
}

/* Numbered 1024-byte writes alternating between fd[0] and fd[1] until one
 * fails for good; returns how many succeeded (-1 if not EPERM). */
static int fill(int fd[2], unsigned first)
{
	char buf[MSG];
	for (unsigned i = 0; i < 2000; i++) {
		unsigned n = first + i;
		memset(buf, 0, sizeof buf);
		memcpy(buf, &n, sizeof n);
		if (write_room(fd[i % 2], buf, MSG) != 0)
			return errno == EPERM ? (int)i : -1;
	}
	return 2000;
}

/* Reads alternating between the hosts until both return 0; counts the
 * messages; *in_order stays 1 if they came numbered from `first` up. */
static int drain(int fd[2], unsigned first, int *in_order)
{
	char buf[MSG * 2];
	int n = 0, empty = 0;
	while (empty < 2) {
		ssize_t r = read(fd[n % 2 == 0 ? 1 : 0], buf, sizeof buf);
		if (r < 0)
			return -1;
		if (r == 0) {
			empty++;
			continue;
		}
		unsigned got;
		memcpy(&got, buf, sizeof got);
		if (r != MSG || got != first + (unsigned)n)
			*in_order = 0;
		n++;
		empty = 0;
	}
	return n;
}

static int storage(int fd[2], int *capacity)
{
	char buf[MSG * 2];
	int in_order = 1;
	int k = fill(fd, 0);
	CHECK(k > N64 * 85 / 100 && k < N64, "1024-byte writes filled the group at %d messages "
	      "(expected fewer than the %d of the n + 64 count, more than 85%% of them)", k, N64);
	memset(buf, 0, MSG);
	errno = 0;
	CHECK(write(fd[0], buf, MSG) == -1 && errno == EPERM, "host 1 accepts a write to the full group");
	errno = 0;
	CHECK(write(fd[1], buf, MSG) == -1 && errno == EPERM, "host 2 accepts a write to the full group");
	unsigned got = 99;
	CHECK(read(fd[1], buf, sizeof buf) == MSG, "read on host 2 of a full group");
	memcpy(&got, buf, sizeof got);
	CHECK(got == 0, "first message read is #%u", got);
	unsigned n = (unsigned)k;
	memset(buf, 0, MSG);
	memcpy(buf, &n, sizeof n);
	CHECK(write_room(fd[0], buf, MSG) == 0, "a read did not free room for one message within %d ms",
	      ROOM_WAIT_MS);
	errno = 0;
	CHECK(write(fd[1], buf, MSG) == -1 && errno == EPERM, "a read freed room for two messages");
	int d = drain(fd, 1, &in_order);
	CHECK(d == k && in_order, "drained %d messages (in order: %d), expected %d", d, in_order, k);
	*capacity = k;
	return 0;
}

static int delayed(int fd[2], int capacity)
{
	char buf[64];
	int in_order = 1;
	CHECK(set_delay(fd[0], 60000) == 0, "SET_SEND_DELAY(60000) on host 1: %s", strerror(errno));
	int k = fill(fd, 0);
	CHECK(k == capacity, "delayed writes filled the group at %d messages, immediate ones at %d", k, capacity);
	CHECK(read(fd[0], buf, sizeof buf) == 0 && read(fd[1], buf, sizeof buf) == 0,
	      "a delayed message is readable before its delay");
	errno = 0;
	CHECK(set_delay(fd[1], 0) == -1 && errno == EPERM,
	      "SET_SEND_DELAY on host 2 with delayed messages pending did not fail EPERM");
	CHECK(ioctl(fd[1], IOCTL_FLUSH_DELAYED_MESSAGES) == 0, "flush on host 2: %s", strerror(errno));
	/* Each host publishes its own in order; across hosts the order of
	 * the two movers is not defined: count only. */
	int d = drain(fd, 0, &in_order);
	CHECK(d == capacity, "after the flush %d messages were readable, expected %d", d, capacity);
	CHECK(set_delay(fd[1], 0) == 0, "SET_SEND_DELAY(0) after the flush: %s", strerror(errno));
	k = fill(fd, 0);
	CHECK(k == capacity, "after the delayed messages were read, the group holds %d, expected %d "
	      "(copies not freed?)", k, capacity);
	in_order = 1;
	d = drain(fd, 0, &in_order);
	if (d != capacity || !in_order) {
		char late[MSG * 2];
		unsigned got = 0;
		usleep(1000000);
		ssize_t r0 = read(fd[0], late, sizeof late), r1 = r0 > 0 ? 0 : read(fd[1], late, sizeof late);
		if (r0 > 0 || r1 > 0)
			memcpy(&got, late, sizeof got);
		CHECK(0, "drained %d of %d (in order: %d); a second later host 1 read %zd, host 2 %zd (#%u)",
		      d, capacity, in_order, r0, r1, got);
	}
	return 0;
}

static int params_steps(int fd[2], unsigned new_group, int m1, int m2, struct synchmess_params saved);

/* The parameters are put back whatever happens. */
static int params(int fd[2], unsigned new_group)
{
	struct synchmess_params saved = { 0 };
	int m1 = master(0), m2 = master(1), r;
	CHECK(m1 >= 0 && m2 >= 0 && ioctl(m1, IOCTL_GET_PARAMS, &saved) == 0, "masters: %s", strerror(errno));
	r = params_steps(fd, new_group, m1, m2, saved);
	if (ioctl(m1, IOCTL_SET_PARAMS, &saved) != 0)
		fprintf(stderr, "cluster-limits: parameters not restored: %s\n", strerror(errno));
	close(m1);
	close(m2);
	return r;
}

static int params_steps(int fd[2], unsigned new_group, int m1, int m2, struct synchmess_params saved)
{
	struct synchmess_params p = { 0 }, q = { 0 };
	char buf[MSG];
	int in_order = 1, g2[2] = { -1, -1 };
	for (unsigned i = 0; i < 10; i++) {
		memset(buf, 0, MSG);
		memcpy(buf, &i, sizeof i);
		CHECK(write_room(fd[i % 2], buf, MSG) == 0, "write %u: %s", i, strerror(errno));
	}
	p.max_storage_size = 4096;
	CHECK(ioctl(m1, IOCTL_SET_PARAMS, &p) == 0, "SET_PARAMS on host 1: %s", strerror(errno));
	CHECK(ioctl(m2, IOCTL_GET_PARAMS, &q) == 0 && q.max_storage_size == 4096,
	      "host 2's max_storage_size is %llu after SET_PARAMS on host 1", (unsigned long long)q.max_storage_size);
	int d = drain(fd, 0, &in_order);
	CHECK(d == 10 && in_order, "after shrinking, %d of 10 stored messages read (in order: %d)", d, in_order);
	g2[0] = group_open(0, new_group);
	g2[1] = group_open(1, new_group);
	CHECK(g2[0] >= 0 && g2[1] >= 0, "group %u: %s", new_group, strerror(errno));
	int k = fill(g2, 0);
	CHECK(k >= 1 && k <= 3, "a group created after the shrink to 4096 bytes took %d messages of 1024", k);
	p.max_storage_size = saved.max_storage_size;
	CHECK(ioctl(m2, IOCTL_SET_PARAMS, &p) == 0, "SET_PARAMS on host 2: %s", strerror(errno));
	CHECK(ioctl(m1, IOCTL_GET_PARAMS, &q) == 0 && q.max_storage_size == saved.max_storage_size,
	      "host 1's max_storage_size is %llu after SET_PARAMS on host 2", (unsigned long long)q.max_storage_size);
	int more = fill(g2, (unsigned)k);
	CHECK(more > N64 * 85 / 100 - k, "the group's stream was not grown: %d more messages", more);
	d = drain(g2, 0, &in_order);
	CHECK(d == k + more && in_order, "drained %d of %d", d, k + more);
	close(g2[0]);
	close(g2[1]);
	return 0;
}

int main(int argc, char **argv)
{
	int fd[2], capacity = 0, failed = 0;
	if (argc != 5) {
		fprintf(stderr, "usage: cluster-limits DIR1 DIR2 GROUP NEW_GROUP\n");
		return 2;
	}
	dirs[0] = argv[1];
	dirs[1] = argv[2];
	unsigned group = (unsigned)atoi(argv[3]), new_group = (unsigned)atoi(argv[4]);
	struct synchmess_params initial = { 0 }, small = { .max_storage_size = STORAGE };
	int m = master(0);
	if (m < 0 || ioctl(m, IOCTL_GET_PARAMS, &initial) != 0 || ioctl(m, IOCTL_SET_PARAMS, &small) != 0) {
		perror("parameters");
		return 1;
	}
	fd[0] = group_open(0, group);
	fd[1] = group_open(1, group);
	if (fd[0] < 0 || fd[1] < 0) {
		perror("group");
		return 1;
	}
#define RUN(name, call)                                                     \
	do {                                                                \
		why[0] = 0;                                                 \
		if ((call) == 0) {                                          \
			printf("PASS %s\n", name);                          \
		} else {                                                    \
			printf("FAIL %s: %s\n", name, why);                 \
			failed++;                                           \
		}                                                           \
		fflush(stdout);                                             \
	} while (0)
	RUN("cluster_storage_limit", storage(fd, &capacity));
	if (capacity > 0)
		RUN("cluster_delay_storage_reserved_at_write", delayed(fd, capacity));
	else
		printf("FAIL cluster_delay_storage_reserved_at_write: no capacity measured\n"), failed++;
	RUN("cluster_params_shrink_keeps_grow_resizes", params(fd, new_group));
	if (ioctl(m, IOCTL_SET_PARAMS, &initial) != 0) {
		perror("restoring the parameters");
		failed++;
	}
	return failed ? 1 : 0;
}
