/*
 * vm_devcheck.c - checks, inside the VM, that synchmessd made real CUSE
 * char devices.
 *
 * Usage: vm_devcheck [DEV_DIR]   (DEV_DIR defaults to /dev/synch)
 *
 * Checks, printing "ok ..." or "FAIL ..." for each:
 *   1. DEV_DIR/synchmess is a char device with minor 0, and sysfs
 *      /sys/class/cuse/synch!synchmess/dev names the same MAJOR:MINOR;
 *   2. IOCTL_INSTALL_GROUP(1) on the master (opened read-only) returns 0 and
 *      writes "/dev/synch/synchmess1" back;
 *   3. DEV_DIR/synchmess1 appears within 5 s (as clients spin on access()),
 *      is a char device with the master's major and minor 1, and sysfs
 *      agrees;
 *   4. /proc/mounts has no fuse mount at or under DEV_DIR.
 * Exit status 0 if all pass, 1 otherwise.  Plain C, no global state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

/* check_sysfs: 0 if /sys/class/cuse/<kname>/dev reads "MAJ:MIN" of rdev. */
static int check_sysfs(const char *kname, dev_t rdev)
{
	char path[512];
	unsigned maj = 0, min = 0;
	snprintf(path, sizeof path, "/sys/class/cuse/%s/dev", kname);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("FAIL %s: %s\n", path, strerror(errno));
		return 1;
	}
	int n = fscanf(f, "%u:%u", &maj, &min);
	fclose(f);
	if (n != 2 || maj != major(rdev) || min != minor(rdev)) {
		printf("FAIL %s says %u:%u, the node is %u:%u\n", path, maj, min,
		       major(rdev), minor(rdev));
		return 1;
	}
	printf("ok   %s = %u:%u\n", path, maj, min);
	return 0;
}

/* check_node: 0 if path is a char device with the given minor (and major,
 * unless want_major is -1); stores the device number in *rdev. */
static int check_node(const char *path, long want_major, unsigned want_minor,
		      dev_t *rdev)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		printf("FAIL stat %s: %s\n", path, strerror(errno));
		return 1;
	}
	*rdev = st.st_rdev;
	if (!S_ISCHR(st.st_mode)) {
		printf("FAIL %s is not a char device (mode %o)\n", path,
		       (unsigned)st.st_mode);
		return 1;
	}
	if (minor(st.st_rdev) != want_minor ||
	    (want_major >= 0 && major(st.st_rdev) != (unsigned long)want_major)) {
		printf("FAIL %s is %u:%u, expected %ld:%u\n", path,
		       major(st.st_rdev), minor(st.st_rdev), want_major,
		       want_minor);
		return 1;
	}
	printf("ok   %s is a char device %u:%u (mode %04o)\n", path,
	       major(st.st_rdev), minor(st.st_rdev),
	       (unsigned)(st.st_mode & 07777));
	return 0;
}

/* wait_exists: 0 once path exists, 1 after timeout_ms. */
static int wait_exists(const char *path, long timeout_ms)
{
	const struct timespec step = { 0, 10 * 1000 * 1000 };
	for (long waited = 0; waited <= timeout_ms; waited += 10) {
		if (access(path, F_OK) == 0) {
			printf("ok   %s appeared after about %ld ms\n", path,
			       waited);
			return 0;
		}
		nanosleep(&step, NULL);
	}
	printf("FAIL %s did not appear within %ld ms\n", path, timeout_ms);
	return 1;
}

/* check_install: 0 if IOCTL_INSTALL_GROUP(1) succeeds with the ABI path. */
static int check_install(const char *master)
{
	int fd = open(master, O_RDONLY);
	if (fd < 0) {
		printf("FAIL open %s O_RDONLY: %s\n", master, strerror(errno));
		return 1;
	}
	struct group_t group;
	memset(&group, 0, sizeof group);
	group.descriptor = 1;
	int rc = ioctl(fd, IOCTL_INSTALL_GROUP, &group);
	int err = errno;
	close(fd);
	if (rc != 0) {
		printf("FAIL ioctl INSTALL_GROUP(1): rc %d, %s\n", rc,
		       strerror(err));
		return 1;
	}
	if (strcmp(group.device_path, "/dev/synch/synchmess1") != 0) {
		printf("FAIL INSTALL_GROUP(1) wrote \"%.256s\"\n",
		       group.device_path);
		return 1;
	}
	printf("ok   INSTALL_GROUP(1) returned 0, path %s\n", group.device_path);
	return 0;
}

/* check_mounts: 0 if no fuse mount sits at or under dir. */
static int check_mounts(const char *dir)
{
	FILE *f = fopen("/proc/mounts", "r");
	if (!f) {
		printf("FAIL /proc/mounts: %s\n", strerror(errno));
		return 1;
	}
	char line[1024], where[512], type[128];
	size_t len = strlen(dir);
	int bad = 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%*s %511s %127s", where, type) != 2)
			continue;
		int under = strncmp(where, dir, len) == 0 &&
			    (where[len] == '\0' || where[len] == '/');
		if (under && strncmp(type, "fuse", 4) == 0) {
			printf("FAIL fuse mount at %s: %s", where, line);
			bad = 1;
		}
	}
	fclose(f);
	if (!bad)
		printf("ok   no fuse mount at or under %s\n", dir);
	return bad;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/dev/synch";
	char master[512], group1[512];
	snprintf(master, sizeof master, "%s/synchmess", dir);
	snprintf(group1, sizeof group1, "%s/synchmess1", dir);

	int failed = 0;
	dev_t master_dev = 0, group_dev = 0;
	if (check_node(master, -1, 0, &master_dev) != 0)
		return 1; /* nothing else makes sense without the master */
	failed += check_sysfs("synch!synchmess", master_dev);
	if (check_install(master) == 0 && wait_exists(group1, 5000) == 0) {
		if (check_node(group1, major(master_dev), 1, &group_dev) == 0)
			failed += check_sysfs("synch!synchmess1", group_dev);
		else
			failed++;
	} else {
		failed++;
	}
	failed += check_mounts(dir);
	printf("vm_devcheck: %s\n", failed ? "FAILED" : "all checks passed");
	return failed ? 1 : 0;
}
