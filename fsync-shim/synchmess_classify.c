/*
 * synchmess_classify.c - see synchmess_classify.h.
 */
#define _GNU_SOURCE
#include "synchmess_classify.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* major + 1 of a CUSE master, st_dev + 1 of a FUSE master; 0 = not known. */
static atomic_uint cached_major_plus1;
static atomic_ullong cached_fuse_dev_plus1;

/* Stats the master into *st; 0 if it exists. */
static int stat_master(struct stat *st)
{
	const char *dir = getenv("SYNCHMESS_DEV_DIR");
	char path[4096];

	if (!dir || !*dir)
		dir = "/dev/synch";
	if (snprintf(path, sizeof path, "%s/synchmess", dir) >= (int)sizeof path)
		return -1;
	return stat(path, st);
}

static enum synchmess_kind classify_cuse(const struct stat *st)
{
	unsigned want = major(st->st_rdev) + 1;
	struct stat m;

	if (atomic_load_explicit(&cached_major_plus1, memory_order_relaxed) == want)
		return SYNCHMESS_CUSE_DEVICE;
	if (stat_master(&m) != 0 || !S_ISCHR(m.st_mode))
		return SYNCHMESS_NOT_OURS;
	atomic_store_explicit(&cached_major_plus1, major(m.st_rdev) + 1,
			      memory_order_relaxed);
	return major(m.st_rdev) + 1 == want ? SYNCHMESS_CUSE_DEVICE : SYNCHMESS_NOT_OURS;
}

static enum synchmess_kind classify_fuse(int fd, const struct stat *st)
{
	unsigned long long want = (unsigned long long)st->st_dev + 1;
	struct statfs fs;
	struct stat m;

	if (atomic_load_explicit(&cached_fuse_dev_plus1, memory_order_relaxed) == want)
		return SYNCHMESS_FUSE_FILE;
	/* FUSE mounts have anonymous devices (major 0); only a file on a FUSE
	 * filesystem is worth a look at the master. */
	if (major(st->st_dev) != 0 || fstatfs(fd, &fs) != 0 ||
	    fs.f_type != FUSE_SUPER_MAGIC)
		return SYNCHMESS_NOT_OURS;
	if (stat_master(&m) != 0 || !S_ISREG(m.st_mode))
		return SYNCHMESS_NOT_OURS;
	atomic_store_explicit(&cached_fuse_dev_plus1,
			      (unsigned long long)m.st_dev + 1, memory_order_relaxed);
	return (unsigned long long)m.st_dev + 1 == want ? SYNCHMESS_FUSE_FILE
							: SYNCHMESS_NOT_OURS;
}

enum synchmess_kind synchmess_classify(int fd)
{
	int saved = errno;
	enum synchmess_kind k = SYNCHMESS_NOT_OURS;
	struct stat st;

	if (fstat(fd, &st) == 0) {
		if (S_ISCHR(st.st_mode))
			k = classify_cuse(&st);
		else if (S_ISREG(st.st_mode))
			k = classify_fuse(fd, &st);
	}
	errno = saved;
	return k;
}
