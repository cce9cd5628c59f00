/*
 * fsync_shim.c - libsynchmess-fsync.so, an LD_PRELOAD shim that gives
 * unmodified clients the module's fsync and vectored/positional I/O on
 * synchmess devices.
 *
 * Contract:
 * - Which fds: a character device with the major of the synchmess master
 *   ($SYNCHMESS_DEV_DIR/synchmess, default /dev/synch/synchmess): the CUSE
 *   transport; or a regular file on the same FUSE filesystem as that master:
 *   the FUSE transport.  Every other fd goes to the next definition of the
 *   function (dlsym RTLD_NEXT), untouched, errno as the caller left it.
 * - fsync/fdatasync (CUSE devices only; FUSE delivers fsync itself): CUSE has
 *   no fsync (the kernel answers EINVAL without asking the daemon), so they
 *   issue IOCTL_FLUSH_DELAYED_MESSAGES instead: a group flushes; the master
 *   refuses with EPERM, as fsync on the module's master does.
 * - readv/writev/preadv/pwritev/preadv2/pwritev2 (and their *64 names):
 *   the module has .read/.write and no .read_iter/.write_iter, so the
 *   kernel's do_loop_readv_writev turns one vectored call into one
 *   read/write per segment; FUSE and CUSE instead merge all segments into
 *   one request.  Here the same loop runs in user space, with the kernel's
 *   checks in the kernel's order: EBADF for the wrong access mode, then the
 *   iovec array's EINVAL/EFAULT exactly as import_iovec gives them (asked of
 *   the kernel itself with a zero-length process_vm_readv), 0 if the total is
 *   0, EINVAL if pos + total overflows, EOPNOTSUPP for a *v2 flag other than
 *   RWF_HIPRI; then one read()/write() per non-empty segment, stopping at the
 *   first error (returned only if nothing was transferred, else the total)
 *   or the first short transfer.  Zero-length segments make no call: a
 *   0-byte read or write on our devices is a no-op returning 0.
 * - pread/pwrite (and *64, and the fortified __pread_chk/__pread64_chk):
 *   FUSE and CUSE open the devices non-seekable (ESPIPE); the module's
 *   positional calls reach its .read/.write, which ignore the offset.  Here:
 *   EINVAL for a negative offset or pos + count overflow, else read/write.
 *   The *v variants ignore the offset the same way.
 *
 * Thread safety: the real functions are looked up once (pthread_once).  Which
 * fds are ours is synchmess_classify.h (shared with the seccomp supervisor):
 * the master's identity is cached in atomics and looked up again only when a
 * candidate fd does not match it, so a daemon restarted with a new major or
 * mount is picked up.  Other fds cost one fstat per wrapped call (plus an
 * fstatfs for regular files on an anonymous-device filesystem such as
 * tmpfs); nothing is shared between calls but the caches.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "synchmess_classify.h"
#include "synchmess_interface.h"

#define EXPORT __attribute__((visibility("default")))

#ifndef RWF_HIPRI
#define RWF_HIPRI 0x00000001
#endif

typedef int (*sync_fn)(int);
typedef ssize_t (*vec_fn)(int, const struct iovec *, int);
typedef ssize_t (*pvec_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*pvec2_fn)(int, const struct iovec *, int, off_t, int);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;
static struct {
	sync_fn fsync, fdatasync;
	vec_fn readv, writev;
	pvec_fn preadv, pwritev;
	pvec2_fn preadv2, pwritev2;
	pread_fn pread;
	pwrite_fn pwrite;
} real;

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void lookup_real(void)
{
	/* POSIX's way to store a dlsym result in a function pointer. */
	*(void **)&real.fsync = next("fsync");
	*(void **)&real.fdatasync = next("fdatasync");
	*(void **)&real.readv = next("readv");
	*(void **)&real.writev = next("writev");
	*(void **)&real.preadv = next("preadv");
	*(void **)&real.pwritev = next("pwritev");
	*(void **)&real.preadv2 = next("preadv2");
	*(void **)&real.pwritev2 = next("pwritev2");
	*(void **)&real.pread = next("pread");
	*(void **)&real.pwrite = next("pwrite");
}

/* The real function (looked up once), or NULL with errno ENOSYS. */
#define REAL(name)                                                  \
	(pthread_once(&lookup_once, lookup_real),                   \
	 real.name ? real.name : (errno = ENOSYS, real.name))

/* ---- fsync ------------------------------------------------------------- */

static int shim_sync(int fd, int data_only)
{
	sync_fn f;

	if (synchmess_classify(fd) == SYNCHMESS_CUSE_DEVICE)
		return ioctl(fd, IOCTL_FLUSH_DELAYED_MESSAGES);
	f = data_only ? REAL(fdatasync) : REAL(fsync);
	return f ? f(fd) : -1;
}

EXPORT int fsync(int fd)
{
	return shim_sync(fd, 0);
}

EXPORT int fdatasync(int fd)
{
	return shim_sync(fd, 1);
}

/* ---- the module's read/write loop --------------------------------------- */

enum dir { DIR_READ, DIR_WRITE };

/* The kernel's MAX_RW_COUNT: no single transfer moves more. */
static size_t max_rw_count(void)
{
	long page = sysconf(_SC_PAGESIZE);
	return (size_t)INT_MAX & ~((size_t)(page > 0 ? page : 4096) - 1);
}

/* vfs_readv/vfs_writev's first check: the access mode.  0 or -1 EBADF. */
static int check_mode(int fd, enum dir d)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	if ((fl & O_PATH) || (fl & O_ACCMODE) == (d == DIR_READ ? O_WRONLY : O_RDONLY)) {
		errno = EBADF;
		return -1;
	}
	return 0;
}

/* import_iovec's checks.  The kernel itself answers them: a
 * process_vm_readv with no remote segments imports the local array exactly
 * as readv/writev do (EINVAL for a count over UIO_MAXIOV or a negative
 * length, EFAULT for an unreadable array or a segment outside user space)
 * and returns 0 without copying anything or looking the pid up.  Where
 * seccomp forbids it, the checks that need no kernel are done by hand.
 * On success *total is the sum of the lengths, clamped as the kernel does. */
static int check_iovec(const struct iovec *iov, int iovcnt, size_t *total)
{
	size_t max = max_rw_count(), sum = 0;

	if (process_vm_readv(getpid(), iov, (unsigned long)(long)iovcnt, NULL, 0, 0) != 0) {
		if (errno != ENOSYS && errno != EPERM)
			return -1;
		if (iovcnt < 0 || iovcnt > IOV_MAX) {
			errno = EINVAL;
			return -1;
		}
		for (int i = 0; i < iovcnt; i++)
			if ((ssize_t)iov[i].iov_len < 0) {
				errno = EINVAL;
				return -1;
			}
	}
	for (int i = 0; i < iovcnt; i++)
		sum += iov[i].iov_len < max - sum ? iov[i].iov_len : max - sum;
	*total = sum;
	return 0;
}

/* vfs_readv/vfs_writev + do_loop_readv_writev over our read/write.  pos is
 * NULL for the current-position calls; flags are the *v2 flags. */
static ssize_t module_rw(int fd, const struct iovec *iov, int iovcnt,
			 const off_t *pos, int flags, enum dir d)
{
	int saved = errno;
	size_t total, left, len;
	ssize_t done = 0, nr;

	if (check_mode(fd, d) != 0 || check_iovec(iov, iovcnt, &total) != 0)
		return -1;
	if (total == 0)
		return 0;
	if (pos && (uint64_t)*pos + total > (uint64_t)INT64_MAX) {
		errno = EINVAL; /* rw_verify_area */
		return -1;
	}
	if (flags & ~RWF_HIPRI) {
		errno = EOPNOTSUPP;
		return -1;
	}
	left = total;
	for (int i = 0; i < iovcnt && left > 0; i++) {
		len = iov[i].iov_len < left ? iov[i].iov_len : left;
		if (len == 0)
			continue;
		left -= len;
		nr = d == DIR_READ ? read(fd, iov[i].iov_base, len)
				   : write(fd, iov[i].iov_base, len);
		if (nr < 0) {
			if (done == 0)
				return -1;
			errno = saved;
			break;
		}
		done += nr;
		if ((size_t)nr != len)
			break;
	}
	return done;
}

/* ---- vectored calls ---------------------------------------------------- */

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	vec_fn f;

	if (synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, NULL, 0, DIR_READ);
	f = REAL(readv);
	return f ? f(fd, iov, iovcnt) : -1;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	vec_fn f;

	if (synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, NULL, 0, DIR_WRITE);
	f = REAL(writev);
	return f ? f(fd, iov, iovcnt) : -1;
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t pos)
{
	pvec_fn f;

	if (pos >= 0 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, &pos, 0, DIR_READ);
	f = REAL(preadv);
	return f ? f(fd, iov, iovcnt, pos) : -1;
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t pos)
{
	pvec_fn f;

	if (pos >= 0 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, &pos, 0, DIR_WRITE);
	f = REAL(pwritev);
	return f ? f(fd, iov, iovcnt, pos) : -1;
}

/* pos -1: the current position (readv with flags); below -1: EINVAL from
 * the real call. */
EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t pos,
		       int flags)
{
	pvec2_fn f;

	if (pos >= -1 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, pos == -1 ? NULL : &pos, flags,
				 DIR_READ);
	f = REAL(preadv2);
	return f ? f(fd, iov, iovcnt, pos, flags) : -1;
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t pos,
			int flags)
{
	pvec2_fn f;

	if (pos >= -1 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_rw(fd, iov, iovcnt, pos == -1 ? NULL : &pos, flags,
				 DIR_WRITE);
	f = REAL(pwritev2);
	return f ? f(fd, iov, iovcnt, pos, flags) : -1;
}

/* On LP64 off_t is off64_t: glibc's *64 names are the same functions. */
_Static_assert(sizeof(off_t) == 8, "the *64 aliases assume a 64-bit off_t");

EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt, off_t pos)
	__attribute__((alias("preadv")));
EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t pos)
	__attribute__((alias("pwritev")));
EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int iovcnt, off_t pos,
			  int flags) __attribute__((alias("preadv2")));
EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt,
			   off_t pos, int flags) __attribute__((alias("pwritev2")));

/* ---- positional single-buffer calls ------------------------------------ */

/* ksys_pread64/ksys_pwrite64 + vfs_read/vfs_write over our read/write:
 * EBADF for the wrong access mode, EINVAL if pos + count overflows, else
 * the plain call (which gives EFAULT and the rest itself). */
static ssize_t module_prw(int fd, void *buf, size_t count, off_t pos, enum dir d)
{
	if (check_mode(fd, d) != 0)
		return -1;
	if (count <= (size_t)SSIZE_MAX && (uint64_t)pos + count > (uint64_t)INT64_MAX) {
		errno = EINVAL;
		return -1;
	}
	return d == DIR_READ ? read(fd, buf, count) : write(fd, buf, count);
}

EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t pos)
{
	pread_fn f;

	if (pos >= 0 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_prw(fd, buf, count, pos, DIR_READ);
	f = REAL(pread);
	return f ? f(fd, buf, count, pos) : -1;
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t pos)
{
	pwrite_fn f;

	if (pos >= 0 && synchmess_classify(fd) != SYNCHMESS_NOT_OURS)
		return module_prw(fd, (void *)buf, count, pos, DIR_WRITE);
	f = REAL(pwrite);
	return f ? f(fd, buf, count, pos) : -1;
}

EXPORT ssize_t pread64(int fd, void *buf, size_t count, off_t pos)
	__attribute__((alias("pread")));
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off_t pos)
	__attribute__((alias("pwrite")));

/* _FORTIFY_SOURCE's pread: glibc's own calls its internal pread, which the
 * preload cannot see, so the checking entry points are wrapped too. */
extern void __chk_fail(void) __attribute__((noreturn));

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t count, off_t pos,
			   size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return pread(fd, buf, count, pos);
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t count, off_t pos,
			     size_t buflen) __attribute__((alias("__pread_chk")));
