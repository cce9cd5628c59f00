/*
 * iov_shim_test.c - unit test of the vectored and positional wrappers of
 * libsynchmess-fsync.so, without a daemon; run with the shim preloaded
 * (ctest runs it through the synchmess-fsync wrapper).
 *
 * How: $SYNCHMESS_DEV_DIR/synchmess is a symlink to /dev/null, so an fd of
 * /dev/null looks like a synchmess CUSE device to the shim.  This program
 * defines read() and write() itself (exported, so the shim's calls bind to
 * them): on that fd they are a fake module that records every call as one
 * message, refuses writes longer than FAKE_MAX with EPERM, can be told to
 * fail or come up short at a given call, and reads one message per call
 * (copying what fits and returning the bytes copied, as our daemon does);
 * every other fd goes to the raw system call.
 *
 * Checks: the wrappers are what the program's calls resolve to; on pipes,
 * regular files and bad fds they agree with the raw system calls, result
 * and errno; on the fake device they follow do_loop_readv_writev: one call
 * per non-empty segment in order, an error returned only if nothing was
 * done (errno untouched otherwise), a stop after a short transfer, EBADF /
 * EINVAL / EFAULT / EOPNOTSUPP as vfs_readv/vfs_writev give them and before
 * any call; preadv/pwritev/pread/pwrite ignore the offset but refuse a
 * negative or overflowing one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "test_expect.h"

/* Over UIO_MAXIOV, and negative: volatile, so the compiler does not object
 * to the calls that must fail on them. */
static volatile int too_many = 1025, negative = -1;


/* ---- the fake module behind fake_fd -------------------------------------- */

#define FAKE_MAX 16
#define FAKE_SLOTS 64

static int fake_fd = -1;
static struct {
	char data[FAKE_SLOTS][FAKE_MAX];
	size_t len[FAKE_SLOTS];
	unsigned head, tail;   /* queue of messages */
	unsigned calls;        /* read/write calls on fake_fd */
	unsigned fail_at;      /* 1-based call that fails with fail_errno; 0 = none */
	int fail_errno;
	unsigned short_at;     /* 1-based write call that takes one byte less */
} fake;

static void fake_reset(void)
{
	memset(&fake, 0, sizeof fake);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	if (fd != fake_fd)
		return syscall(SYS_write, fd, buf, count);
	fake.calls++;
	if (fake.fail_at == fake.calls) {
		errno = fake.fail_errno;
		return -1;
	}
	if (count > FAKE_MAX || fake.tail - fake.head == FAKE_SLOTS) {
		errno = EPERM;
		return -1;
	}
	if (fake.short_at == fake.calls)
		count--;
	memcpy(fake.data[fake.tail % FAKE_SLOTS], buf, count);
	fake.len[fake.tail % FAKE_SLOTS] = count;
	fake.tail++;
	return (ssize_t)count;
}

ssize_t read(int fd, void *buf, size_t count)
{
	size_t n;

	if (fd != fake_fd)
		return syscall(SYS_read, fd, buf, count);
	fake.calls++;
	if (fake.fail_at == fake.calls) {
		errno = fake.fail_errno;
		return -1;
	}
	if (fake.head == fake.tail)
		return 0;
	n = fake.len[fake.head % FAKE_SLOTS];
	if (n > count)
		n = count;
	memcpy(buf, fake.data[fake.head % FAKE_SLOTS], n);
	fake.head++;
	return (ssize_t)n;
}

static unsigned queued(void)
{
	return fake.tail - fake.head;
}

/* Message i (0 = oldest still queued) equals s. */
static int message_is(unsigned i, const char *s)
{
	unsigned slot = (fake.head + i) % FAKE_SLOTS;
	return fake.len[slot] == strlen(s) && memcmp(fake.data[slot], s, strlen(s)) == 0;
}

static void push(const char *s)
{
	EXPECT(write(fake_fd, s, strlen(s)) == (ssize_t)strlen(s), "push %s", s);
}

/* ---- checks ---------------------------------------------------------------- */

/* The library under test: libsynchmess-fsync.so, or the one named by
 * $SYNCHMESS_SHIM_LIB (libsynchmess-fast.so links the same code). */
static int from_shim(void *fn)
{
	const char *lib = getenv("SYNCHMESS_SHIM_LIB");
	Dl_info info;
	return dladdr(fn, &info) && info.dli_fname &&
	       strstr(info.dli_fname, lib && *lib ? lib : "libsynchmess-fsync.so") != NULL;
}

static void test_preloaded(void)
{
	static const char *names[] = { "readv", "writev", "preadv", "pwritev",
				       "preadv2", "pwritev2", "preadv64",
				       "pwritev64", "pread", "pwrite", "pread64",
				       "pwrite64", "__pread_chk" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		EXPECT(from_shim(dlsym(RTLD_DEFAULT, names[i])),
		       "%s does not resolve to the shim (run under synchmess-fsync)",
		       names[i]);
}

/* writev/readv on a non-synchmess fd agree with the raw system calls. */
static void same_as_raw(int wfd, int rfd, const char *what)
{
	char a[] = "abc", b[] = "defgh", in1[4], in2[4]; /* in: exactly what out writes */
	struct iovec out[2] = { { a, 3 }, { b, 5 } };
	struct iovec in[2] = { { in1, sizeof in1 }, { in2, sizeof in2 } };
	ssize_t r1, r2;
	int e1, e2;

	errno = 4321;
	r1 = writev(wfd, out, 2);
	e1 = errno;
	errno = 4321;
	r2 = syscall(SYS_writev, wfd, out, 2);
	e2 = errno;
	EXPECT(r1 == r2 && e1 == e2, "writev(%s): shim %zd/%d, raw %zd/%d", what,
	       r1, e1, r2, e2);
	errno = 4321;
	r1 = readv(rfd, in, 2);
	e1 = errno;
	errno = 4321;
	r2 = syscall(SYS_readv, rfd, in, 2);
	e2 = errno;
	EXPECT(r1 == r2 && e1 == e2, "readv(%s): shim %zd/%d, raw %zd/%d", what,
	       r1, e1, r2, e2);
	errno = 4321;
	r1 = writev(wfd, out, too_many);
	e1 = errno;
	errno = 4321;
	r2 = syscall(SYS_writev, wfd, out, too_many);
	e2 = errno;
	EXPECT(r1 == r2 && e1 == e2, "writev(%s, 1025): shim %zd/%d, raw %zd/%d",
	       what, r1, e1, r2, e2);
}

static void test_other_fds(void)
{
	char path[] = "/tmp/iov-shim-test-XXXXXX", a[] = "xyz", buf[8];
	struct iovec v = { a, 3 };
	int p[2], fd;

	EXPECT(pipe(p) == 0, "pipe: %s", strerror(errno));
	same_as_raw(p[1], p[0], "pipe");
	errno = 0;
	EXPECT(pwritev(p[1], &v, 1, 0) == -1 && errno == ESPIPE,
	       "pwritev(pipe) %s, expected ESPIPE", strerror(errno));
	close(p[0]);
	close(p[1]);
	same_as_raw(p[0], p[0], "closed fd");

	fd = mkstemp(path);
	EXPECT(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd < 0)
		return;
	unlink(path);
	same_as_raw(fd, fd, "regular file");
	EXPECT(pwritev(fd, &v, 1, 100) == 3, "pwritev(file) %s", strerror(errno));
	EXPECT(pread(fd, buf, 3, 100) == 3 && memcmp(buf, "xyz", 3) == 0,
	       "pread(file) at 100 did not read what pwritev wrote there");
	EXPECT(pwrite(fd, "q", 1, 0) == 1, "pwrite(file) %s", strerror(errno));
	errno = 0;
	EXPECT(pread(fd, buf, 1, -1) == -1 && errno == EINVAL,
	       "pread(file, -1) %s, expected EINVAL", strerror(errno));
	close(fd);
}

/* writev: one write per non-empty segment, in order. */
static void test_writev_loop(void)
{
	char a[] = "AAAA", b[] = "BBBBBB", c[] = "CC";
	struct iovec v[5] = { { a, 0 }, { a, 4 }, { b, 0 }, { b, 6 }, { c, 2 } };

	fake_reset();
	errno = 777;
	EXPECT(writev(fake_fd, v, 5) == 12, "writev of 4+6+2 did not return 12");
	EXPECT(errno == 777, "a successful writev changed errno to %d", errno);
	EXPECT(fake.calls == 3, "%u writes for 3 non-empty segments", fake.calls);
	EXPECT(queued() == 3 && message_is(0, "AAAA") && message_is(1, "BBBBBB") &&
	       message_is(2, "CC"), "the 3 segments are not 3 messages in order");

	/* Each segment is checked on its own: 3 x 10 bytes pass a 16-byte limit
	 * their sum would break. */
	char big[3][10];
	memset(big, 'm', sizeof big);
	struct iovec bv[3] = { { big[0], 10 }, { big[1], 10 }, { big[2], 10 } };
	fake_reset();
	EXPECT(writev(fake_fd, bv, 3) == 30 && queued() == 3,
	       "3 segments of 10 under a 16-byte limit: not 3 messages");

	/* Only zero-length segments: 0, no call. */
	fake_reset();
	EXPECT(writev(fake_fd, v, 1) == 0 && fake.calls == 0,
	       "an empty writev made a call");
	EXPECT(writev(fake_fd, v, 0) == 0 && fake.calls == 0,
	       "writev of 0 segments made a call");
}

static void test_writev_errors(void)
{
	char a[] = "AAAA", big[FAKE_MAX + 1], c[] = "CC";
	struct iovec v[3] = { { a, 4 }, { big, sizeof big }, { c, 2 } };

	memset(big, 'x', sizeof big);
	/* The second segment fails: the first one's count, errno untouched. */
	fake_reset();
	errno = 777;
	EXPECT(writev(fake_fd, v, 3) == 4, "writev failing at segment 2 did not "
	       "return segment 1's 4 bytes");
	EXPECT(errno == 777, "errno %d after a partly done writev", errno);
	EXPECT(fake.calls == 2 && queued() == 1 && message_is(0, "AAAA"),
	       "writev went on after a failed segment (%u calls)", fake.calls);

	/* The first segment fails: its error. */
	fake_reset();
	errno = 0;
	EXPECT(writev(fake_fd, v + 1, 2) == -1 && errno == EPERM,
	       "writev failing at segment 1: %s, expected EPERM", strerror(errno));
	EXPECT(fake.calls == 1 && queued() == 0, "writev went on after an error");

	/* A short write ends the loop. */
	fake_reset();
	fake.short_at = 1;
	struct iovec s[2] = { { a, 4 }, { c, 2 } };
	EXPECT(writev(fake_fd, s, 2) == 3 && fake.calls == 1,
	       "writev did not stop after a short write");

	/* An interrupted second write: the first one's count. */
	fake_reset();
	fake.fail_at = 2;
	fake.fail_errno = EINTR;
	EXPECT(writev(fake_fd, s, 2) == 4, "writev interrupted at segment 2");
}

/* The checks vfs_writev/vfs_readv make before any call. */
static void test_up_front_checks(void)
{
	char a[] = "AAAA";
	struct iovec v[2] = { { a, 4 }, { a, 4 } };
	struct iovec bad_len[2] = { { a, 4 }, { a, (size_t)-1 } };
	struct iovec kernel_addr[2] = { { a, 4 }, { (void *)0xffff888000000000ul, 0 } };
	long page = sysconf(_SC_PAGESIZE);
	char *unmapped = mmap(NULL, (size_t)page, PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	fake_reset();
#define NO_CALL(expr, err)                                                     \
	do {                                                                   \
		errno = 0;                                                     \
		ssize_t r_ = (expr);                                           \
		EXPECT(r_ == -1 && errno == (err), "%s: %zd %s, expected %s", \
		       #expr, r_, strerror(errno), strerror(err));             \
		EXPECT(fake.calls == 0, "%s made %u calls", #expr, fake.calls); \
	} while (0)
	NO_CALL(writev(fake_fd, v, too_many), EINVAL);
	NO_CALL(writev(fake_fd, v, negative), EINVAL);
	NO_CALL(writev(fake_fd, bad_len, 2), EINVAL);
	NO_CALL(writev(fake_fd, kernel_addr, 2), EFAULT);
	NO_CALL(readv(fake_fd, kernel_addr, 2), EFAULT);
	if (unmapped != MAP_FAILED) {
		NO_CALL(writev(fake_fd, (struct iovec *)unmapped, 2), EFAULT);
		munmap(unmapped, (size_t)page);
	}
	NO_CALL(pwritev(fake_fd, v, 2, -1), EINVAL);
	NO_CALL(preadv(fake_fd, v, 2, -5), EINVAL);
	NO_CALL(pwritev2(fake_fd, v, 2, -2, 0), EINVAL);
	NO_CALL(pwritev(fake_fd, v, 2, INT64_MAX - 3), EINVAL);
	NO_CALL(pwrite(fake_fd, a, 4, INT64_MAX - 1), EINVAL);
	NO_CALL(pwrite(fake_fd, a, 4, -1), EINVAL);
	NO_CALL(pwritev2(fake_fd, v, 2, -1, RWF_NOWAIT), EOPNOTSUPP);
	NO_CALL(preadv2(fake_fd, v, 2, 0, RWF_NOWAIT), EOPNOTSUPP);
	/* A zero total wins over the flags, as in the kernel. */
	EXPECT(pwritev2(fake_fd, v, 0, -1, RWF_NOWAIT) == 0, "empty pwritev2");
	EXPECT(fake.calls == 0, "empty pwritev2 made a call");
	EXPECT(pwritev2(fake_fd, v, 2, -1, RWF_HIPRI) == 8 && queued() == 2,
	       "pwritev2 with RWF_HIPRI is not 2 writes");

	/* Access mode first: /dev/null read-only looks like a group too. */
	int ro = open("/dev/null", O_RDONLY), saved_fd = fake_fd;
	EXPECT(ro >= 0, "open /dev/null: %s", strerror(errno));
	if (ro >= 0) {
		fake_fd = ro;
		fake_reset();
		NO_CALL(writev(ro, v, too_many), EBADF);
		NO_CALL(pwrite(ro, a, 4, 0), EBADF);
		fake_fd = saved_fd;
		close(ro);
	}
#undef NO_CALL
}

/* readv: one message per segment, stopping at the first short read. */
static void test_readv_loop(void)
{
	char r1[4], r2[8], r3[8];
	struct iovec v[4] = { { r1, 0 }, { r1, 4 }, { r2, 8 }, { r3, 8 } };

	fake_reset();
	push("abcd");
	push("second");
	push("third");
	push("fourth");
	fake.calls = 0;
	errno = 777;
	EXPECT(readv(fake_fd, v, 4) == 10, "readv 4,8,8 over abcd/second/... "
	       "did not return 4 + 6");
	EXPECT(errno == 777, "a successful readv changed errno");
	EXPECT(fake.calls == 2, "readv made %u reads, expected 2 (stop after the "
	       "short one)", fake.calls);
	EXPECT(memcmp(r1, "abcd", 4) == 0 && memcmp(r2, "second", 6) == 0,
	       "readv put the messages in the wrong segments");
	EXPECT(queued() == 2 && message_is(0, "third"),
	       "readv consumed the wrong messages");

	/* A longer message fills its segment exactly: the loop goes on. */
	fake_reset();
	push("0123456789");
	push("xy");
	EXPECT(readv(fake_fd, v + 1, 3) == 6 && memcmp(r1, "0123", 4) == 0 &&
	       memcmp(r2, "xy", 2) == 0, "readv after a truncated message");

	/* Empty queue: 0; an error at the second read: the first count. */
	fake_reset();
	EXPECT(readv(fake_fd, v, 4) == 0 && fake.calls == 1, "readv of an empty "
	       "queue");
	fake_reset();
	push("abcd");
	fake.calls = 0;
	fake.fail_at = 2;
	fake.fail_errno = EFAULT;
	EXPECT(readv(fake_fd, v, 4) == 4, "readv failing at segment 2");
	fake_reset();
	push("abcd");
	fake.calls = 0;
	fake.fail_at = 1;
	fake.fail_errno = EFAULT;
	errno = 0;
	EXPECT(readv(fake_fd, v, 4) == -1 && errno == EFAULT,
	       "readv failing at segment 1: %s", strerror(errno));
}

/* Positional calls ignore the offset, as the module's read/write do. */
static void test_positional(void)
{
	char a[] = "AAAA", b[] = "BB", r1[4], r2[4];
	struct iovec v[2] = { { a, 4 }, { b, 2 } }, in[2] = { { r1, 4 }, { r2, 4 } };

	fake_reset();
	EXPECT(pwritev(fake_fd, v, 2, 12345) == 6 && queued() == 2,
	       "pwritev is not 2 writes");
	EXPECT(preadv(fake_fd, in, 2, 999) == 6 && queued() == 0,
	       "preadv is not 2 reads");
	EXPECT(pwritev64(fake_fd, v, 2, 0) == 6 && preadv2(fake_fd, in, 2, -1, 0) == 6,
	       "pwritev64/preadv2");
	EXPECT(pwrite(fake_fd, "q", 1, 77) == 1 && queued() == 1 &&
	       pread(fake_fd, r1, 4, 5) == 1 && r1[0] == 'q', "pwrite/pread");
}

int main(void)
{
	char dir[] = "/tmp/iov-shim-master-XXXXXX", link[64];

	test_preloaded();
	test_other_fds();

	/* A master that is /dev/null: /dev/null fds are synchmess devices. */
	if (!mkdtemp(dir)) {
		printf("FAIL mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(link, sizeof link, "%s/synchmess", dir);
	EXPECT(symlink("/dev/null", link) == 0, "symlink: %s", strerror(errno));
	setenv("SYNCHMESS_DEV_DIR", dir, 1);
	fake_fd = open("/dev/null", O_RDWR);
	EXPECT(fake_fd >= 0, "open /dev/null: %s", strerror(errno));
	if (fake_fd >= 0) {
		test_writev_loop();
		test_writev_errors();
		test_up_front_checks();
		test_readv_loop();
		test_positional();
		/* Other fds are still untouched while a master is known. */
		test_other_fds();
	}
	unlink(link);
	rmdir(dir);
	printf("%s\n", failures ? "iov shim test: FAILED" : "iov shim test: ok");
	return failures ? 1 : 0;
}
