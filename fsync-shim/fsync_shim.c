/*
 * fsync_shim.c - libsynchmess-fsync.so, an LD_PRELOAD shim that makes
 * fsync()/fdatasync() work on synchmess CUSE group devices.
 *
 * Contract: CUSE has no fsync (the kernel answers EINVAL without asking the
 * daemon).  For an fd that is a character device with the major of the
 * synchmess master ($SYNCHMESS_DEV_DIR/synchmess, default
 * /dev/synch/synchmess), fsync and fdatasync issue IOCTL_FLUSH_DELAYED_MESSAGES
 * instead and return its result: a group flushes; the master (minor 0)
 * refuses with EPERM, as fsync on the module's master does.  Every other
 * fd goes to the next fsync/fdatasync (dlsym RTLD_NEXT) with errno as the
 * caller left it.
 *
 * Thread safety: the real functions are looked up once (pthread_once).  The
 * master's major is cached in an atomic; it is looked up again only when a
 * character device does not match it, so a daemon restarted with a new
 * dynamic major is picked up, and non-synchmess fds never pay for a stat.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "synchmess_interface.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*sync_fn)(int);

static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;
static sync_fn real_fsync;
static sync_fn real_fdatasync;

/* major + 1 of the master, 0 = not known. */
static atomic_uint cached_major_plus1;

static void lookup_real(void)
{
	/* POSIX's way to store a dlsym result in a function pointer. */
	*(void **)&real_fsync = dlsym(RTLD_NEXT, "fsync");
	*(void **)&real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
}

/* Stats the master; returns its major + 1, or 0 if it is not a char device. */
static unsigned master_major_plus1(void)
{
	const char *dir = getenv("SYNCHMESS_DEV_DIR");
	char path[4096];
	struct stat st;

	if (!dir || !*dir)
		dir = "/dev/synch";
	if (snprintf(path, sizeof path, "%s/synchmess", dir) >= (int)sizeof path)
		return 0;
	if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode))
		return 0;
	return major(st.st_rdev) + 1;
}

/* 1 if fd is a synchmess device (master or group).  Preserves errno. */
static int is_synchmess_device(int fd)
{
	int saved = errno, match = 0;
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		unsigned want = major(st.st_rdev) + 1;
		match = atomic_load_explicit(&cached_major_plus1,
					     memory_order_relaxed) == want;
		if (!match) {
			unsigned now = master_major_plus1();
			if (now != 0)
				atomic_store_explicit(&cached_major_plus1, now,
						      memory_order_relaxed);
			match = now == want;
		}
	}
	errno = saved;
	return match;
}

static int shim_sync(int fd, sync_fn *real)
{
	if (is_synchmess_device(fd))
		return ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES);
	pthread_once(&lookup_once, lookup_real);
	if (!*real) {
		errno = ENOSYS;
		return -1;
	}
	return (*real)(fd);
}

EXPORT int fsync(int fd)
{
	return shim_sync(fd, &real_fsync);
}

EXPORT int fdatasync(int fd)
{
	return shim_sync(fd, &real_fdatasync);
}
