/*
 * cross-host - exactly-once across synchmessd "hosts" sharing a cluster.
 *
 *   cross-host --dirs DIR1,DIR2[,DIR3] [--group N] [--writers W] [--readers R]
 *              [--messages M] [--timeout S] [--bench]
 *
 * Installs group N through each DIR's master, then W writer threads write
 * M unique messages each through the first DIR, while R reader threads read
 * through the other DIRs (round robin; the first one too when there is only
 * one).  A write that fails (EIO while a NATS server is away) is counted as
 * unacknowledged and never repeated.  Readers go on until every
 * acknowledged message was read and a read returns 0, or the timeout.
 * Checks: no message read twice, every acknowledged message read, nothing
 * read that was never written.  --bench prints "pair_us" (one write on the
 * first DIR then one read on the last, one thread, p50) and "msgs_per_s".
 * Exit 0 on success; one line of figures on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

#define MAX_DIRS 3
static char *dirs[MAX_DIRS];
static int ndirs, group = 7, writers = 8, readers = 8, messages = 500, timeout_s = 90, bench;
static atomic_uchar *state;  /* per message: 0 unwritten, 1 attempted, 2 acked; |4 read */
static atomic_int acked, failed_writes, read_count, duplicates, unknown, writers_done, read_errors;

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_group(const char *dir) {
	char path[512];
	snprintf(path, sizeof path, "%s/synchmess", dir);
	int m = open(path, O_RDONLY);
	if (m < 0) { perror(path); return -1; }
	struct group_t g = {.descriptor = (unsigned)group};
	if (ioctl(m, IOCTL_INSTALL_GROUP, &g) != 0) { perror("install"); close(m); return -1; }
	close(m);
	int fd = open(g.device_path, O_RDWR);
	if (fd < 0) perror(g.device_path);
	return fd;
}

static void *writer(void *arg) {
	int t = (int)(long)arg;
	int fd = open_group(dirs[0]);
	if (fd < 0) exit(2);
	for (int i = 0; i < messages; ++i) {
		int id = t * messages + i;
		char buf[64];
		int n = snprintf(buf, sizeof buf, "m%d", id);
		atomic_fetch_or(&state[id], 1);
		if (write(fd, buf, (size_t)n) == n) {
			atomic_fetch_or(&state[id], 2);
			atomic_fetch_add(&acked, 1);
		} else {
			atomic_fetch_add(&failed_writes, 1);
		}
	}
	close(fd);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *reader(void *arg) {
	int r = (int)(long)arg;
	const char *dir = ndirs == 1 ? dirs[0] : dirs[1 + r % (ndirs - 1)];
	int fd = open_group(dir);
	if (fd < 0) exit(2);
	double end = now() + timeout_s;
	double done_at = 0;
	while (now() < end) {
		char buf[128];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		if (n < 0) { atomic_fetch_add(&read_errors, 1); usleep(10000); continue; }
		if (n == 0) {
			if (atomic_load(&writers_done) == writers) {
				/* done when every acked message was read, or 25 s after the
				 * writers finished (a message fetched by a read that failed
				 * comes back after the cluster's 10 s ack wait) */
				int all = 1;
				for (int i = 0; i < writers * messages && all; ++i)
					if ((atomic_load(&state[i]) & 6) == 2) all = 0;
				if (done_at == 0) done_at = now();
				if (all || now() - done_at > 25) break;
			}
			usleep(1000);
			continue;
		}
		buf[n] = 0;
		int id = -1;
		if (buf[0] != 'm' || sscanf(buf + 1, "%d", &id) != 1 || id < 0 || id >= writers * messages) {
			atomic_fetch_add(&unknown, 1);
			continue;
		}
		unsigned char old = atomic_fetch_or(&state[id], 4);
		if (old & 4) atomic_fetch_add(&duplicates, 1);
		else if (!(old & 1)) atomic_fetch_add(&unknown, 1);
		atomic_fetch_add(&read_count, 1);
	}
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run_bench(void) {
	int w = open_group(dirs[0]), r = open_group(dirs[ndirs - 1]);
	if (w < 0 || r < 0) return 2;
	enum { N = 300 };
	static double t[N];
	char buf[64];
	while (read(r, buf, sizeof buf) > 0) ;
	for (int i = 0; i < N; ++i) {
		double t0 = now();
		if (write(w, "pair", 4) != 4) { perror("bench write"); return 1; }
		ssize_t n;
		while ((n = read(r, buf, sizeof buf)) == 0) ;
		if (n != 4) { perror("bench read"); return 1; }
		t[i] = (now() - t0) * 1e6;
	}
	qsort(t, N, sizeof t[0], cmp);
	printf("pair_us %.0f ", t[N / 2]);
	return 0;
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; ++i) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--bench")) { bench = 1; continue; }
		if (!v) { fprintf(stderr, "cross-host: %s needs a value\n", a); return 2; }
		++i;
		if (!strcmp(a, "--dirs")) {
			char *s = strdup(v), *save = NULL;
			for (char *d = strtok_r(s, ",", &save); d && ndirs < MAX_DIRS; d = strtok_r(NULL, ",", &save)) dirs[ndirs++] = d;
		} else if (!strcmp(a, "--group")) group = atoi(v);
		else if (!strcmp(a, "--writers")) writers = atoi(v);
		else if (!strcmp(a, "--readers")) readers = atoi(v);
		else if (!strcmp(a, "--messages")) messages = atoi(v);
		else if (!strcmp(a, "--timeout")) timeout_s = atoi(v);
		else { fprintf(stderr, "cross-host: unknown option %s\n", a); return 2; }
	}
	if (ndirs == 0 || writers < 1 || writers > 64 || readers < 1 || readers > 64 || messages < 1) {
		fprintf(stderr, "usage: cross-host --dirs DIR1,DIR2[,DIR3] [--group N] [--writers W] [--readers R] [--messages M] [--timeout S] [--bench]\n");
		return 2;
	}
	if (bench && run_bench() != 0) return 1;
	state = calloc((size_t)writers * messages, 1);
	pthread_t w[64], r[64];
	double t0 = now();
	for (long i = 0; i < readers; ++i) pthread_create(&r[i], NULL, reader, (void *)i);
	for (long i = 0; i < writers; ++i) pthread_create(&w[i], NULL, writer, (void *)i);
	for (int i = 0; i < writers; ++i) pthread_join(w[i], NULL);
	for (int i = 0; i < readers; ++i) pthread_join(r[i], NULL);
	double secs = now() - t0;
	int lost = 0;
	for (int i = 0; i < writers * messages; ++i)
		if ((state[i] & 6) == 2) ++lost;
	printf("written %d acked %d failed_writes %d read %d lost %d duplicates %d unknown %d read_errors %d seconds %.1f msgs_per_s %.0f\n",
	       writers * messages, acked, failed_writes, read_count, lost, duplicates, unknown, read_errors, secs,
	       read_count / secs);
	if (lost || duplicates || unknown) {
		fprintf(stderr, "cross-host: FAILED: %d acknowledged messages never read, %d read twice, %d never written\n",
		        lost, duplicates, unknown);
		return 1;
	}
	return 0;
}
