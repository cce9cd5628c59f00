/*
 * test_iov.c - vectored and partly mapped I/O on a group device.
 *
 * The module has .read/.write only, so the kernel runs one read/write per
 * iovec (do_loop_readv_writev).  FUSE and CUSE merge all iovecs of one call
 * into one request (fuse_direct_io), so the daemon cannot see segment
 * boundaries.  Two kinds of tests:
 *
 * - iov_transport_*: what the transport does without the shim, pinned so a
 *   change is noticed.  They call the system calls directly (syscall(2)),
 *   so they hold with or without the shim preloaded.  Measured on 6.18:
 *   one request carries at most 32 pages (FUSE_DEFAULT_MAX_PAGES_PER_REQ,
 *   CUSE and FUSE alike), so segments spread over more pages become
 *   several requests; the user buffer is pinned before the request is
 *   sent, so a buffer whose tail is unmapped moves only its mapped head
 *   (a short write queues that head; a short read consumes the message and
 *   delivers its head), one whose head is unmapped fails EFAULT with
 *   nothing queued or consumed.
 * - iov_shim_*: the module's per-iovec semantics through plain readv/writev,
 *   which libsynchmess-fsync.so provides (and libsynchmess-fast.so, which
 *   contains it); they SKIP unless one is preloaded
 *   (tests/integration/iov-shim-check runs them under the first).
 *
 * Every test also checks that nothing else was queued.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client.h"

/* Pages one FUSE/CUSE request carries (FUSE_DEFAULT_MAX_PAGES_PER_REQ). */
#define REQ_PAGES 32
/* Segments spread over more pages than one request carries. */
#define SPREAD 40

static ssize_t raw_writev(int fd, const struct iovec *iov, int n)
{
	return syscall(SYS_writev, fd, iov, n);
}

static ssize_t raw_readv(int fd, const struct iovec *iov, int n)
{
	return syscall(SYS_readv, fd, iov, n);
}

/* The group holds exactly the n messages msgs[i] (lens[i] bytes each), in
 * order; reads them all.  0, or -1 with a reason. */
static int expect_queue(struct sm_ctx *ctx, int fd, const char *const *msgs,
			const size_t *lens, unsigned n)
{
	static char buf[SM_DEFAULT_MAX_MESSAGE * 4];
	ssize_t r;

	for (unsigned i = 0; i < n; i++) {
		errno = 0;
		r = read(fd, buf, sizeof buf);
		if (r != (ssize_t)lens[i] || memcmp(buf, msgs[i], lens[i]) != 0) {
			sm_fail(ctx, r < 0, "message %u: read %zd bytes \"%.*s\", "
				"expected %zu \"%.*s\"", i, r, r > 0 ? (int)r : 0,
				buf, lens[i], (int)lens[i], msgs[i]);
			return -1;
		}
	}
	r = read(fd, buf, sizeof buf);
	if (r != 0) {
		sm_fail(ctx, r < 0, "after %u messages read returned %zd, expected "
			"0 (nothing else queued)", n, r);
		return -1;
	}
	return 0;
}

#define EXPECT_QUEUE(...)                                                  \
	do {                                                               \
		const char *const m_[] = { __VA_ARGS__ };                  \
		size_t l_[sizeof m_ / sizeof m_[0]];                       \
		for (size_t i_ = 0; i_ < sizeof m_ / sizeof m_[0]; i_++)   \
			l_[i_] = strlen(m_[i_]);                           \
		if (expect_queue(ctx, fd, m_, l_, sizeof m_ / sizeof m_[0])) \
			goto out;                                          \
	} while (0)

#define EXPECT_EMPTY()                                                     \
	do {                                                               \
		if (expect_queue(ctx, fd, NULL, NULL, 0))                  \
			goto out;                                          \
	} while (0)

/* The holes below are PROT_NONE pages, not unmapped ones: a page left
 * unmapped is free address space, and a later mmap (libsynchmess-fast.so
 * maps a group's segment when it first meets the fd, and again when the
 * daemon replaces the segment) may land on it, so the "unmapped" bytes
 * would be readable.  The kernel refuses a PROT_NONE page as it refuses an
 * unmapped one (EFAULT from the transport's pinning, a fault on a touch),
 * and no mapping can take its place.  Free with free_holed(). */

/* Two pages, the second inaccessible; returns the first or NULL. */
static char *mapped_then_hole(long page)
{
	char *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + page, (size_t)page, PROT_NONE) != 0) {
		munmap(p, 2 * (size_t)page);
		return NULL;
	}
	return p;
}

/* Two pages, the first inaccessible; returns the second or NULL. */
static char *hole_then_mapped(long page)
{
	char *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, (size_t)page, PROT_NONE) != 0) {
		munmap(p, 2 * (size_t)page);
		return NULL;
	}
	return p + page;
}

/* Frees what mapped_then_hole (head = 0) or hole_then_mapped (head = 1)
 * returned; NULL is ignored. */
static void free_holed(char *p, long page, int head)
{
	if (p)
		munmap(head ? p - page : p, 2 * (size_t)page);
}

/* ---- the transport, without the shim ------------------------------------ */

enum sm_result test_iov_transport_writev_merges(struct sm_ctx *ctx)
{
	char a[] = "AAAA", b[] = "BBBBBB", c[] = "CC";
	struct iovec v[5] = { { a, 0 }, { a, 4 }, { b, 6 }, { c, 0 }, { c, 2 } };
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(raw_writev(fd, v + 1, 2), 10);
	EXPECT_QUEUE("AAAABBBBBB");
	CHECK_RET(raw_writev(fd, v, 5), 12);
	EXPECT_QUEUE("AAAABBBBBBCC");
	/* Only empty segments: 0, nothing queued. */
	CHECK_RET(raw_writev(fd, v, 1), 0);
	CHECK_RET(raw_writev(fd, v, 0), 0);
	/* pwritev2 at the current position is writev. */
	CHECK_RET(syscall(SYS_pwritev2, fd, v + 1, 2, -1L, -1L, 0), 10);
	EXPECT_QUEUE("AAAABBBBBB");
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* Each segment fits max_message_size, their sum does not: one request,
 * refused whole (the module queued one message per segment). */
enum sm_result test_iov_transport_writev_total_too_big(struct sm_ctx *ctx)
{
	static char big[3][1000];
	struct iovec v[3] = { { big[0], 1000 }, { big[1], 1000 }, { big[2], 1000 } };
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	memset(big, 'm', sizeof big);
	CHECK_ERR(raw_writev(fd, v, 3), EPERM);
	EXPECT_EMPTY();
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* SPREAD one-byte segments on SPREAD pages: one message per REQ_PAGES. */
enum sm_result test_iov_transport_writev_page_split(struct sm_ctx *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	struct iovec v[SPREAD];
	char *pages = mmap(NULL, SPREAD * (size_t)page, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char first[REQ_PAGES + 1], second[SPREAD - REQ_PAGES + 1];
	int fd = -1;

	if (pages == MAP_FAILED) {
		sm_fail(ctx, 1, "mmap");
		return SM_FAIL;
	}
	for (int i = 0; i < SPREAD; i++) {
		pages[i * page] = (char)('a' + i % 26);
		v[i].iov_base = pages + i * page;
		v[i].iov_len = 1;
		if (i < REQ_PAGES)
			first[i] = pages[i * page];
		else
			second[i - REQ_PAGES] = pages[i * page];
	}
	first[REQ_PAGES] = second[SPREAD - REQ_PAGES] = '\0';
	fd = sm_group_fresh(ctx, 0);
	CHECK(fd >= 0, "no group");
	CHECK_RET(raw_writev(fd, v, SPREAD), SPREAD);
	EXPECT_QUEUE(first, second);
	close(fd);
	munmap(pages, SPREAD * (size_t)page);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	munmap(pages, SPREAD * (size_t)page);
	return SM_FAIL;
}

/* readv: one message spread over the segments, then it stops. */
enum sm_result test_iov_transport_readv_merges(struct sm_ctx *ctx)
{
	char r1[3], r2[8], r3[8];
	struct iovec v[3] = { { r1, sizeof r1 }, { r2, sizeof r2 }, { r3, sizeof r3 } };
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(write(fd, "first", 5), 5);
	CHECK_RET(write(fd, "second", 6), 6);
	memset(r2, 0, sizeof r2);
	CHECK_RET(raw_readv(fd, v, 3), 5);
	CHECK(memcmp(r1, "fir", 3) == 0 && memcmp(r2, "st", 2) == 0,
	      "readv did not spread \"first\" over the segments");
	EXPECT_QUEUE("second");
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* readv over SPREAD pages: a message that fills the first request's 32
 * bytes lets the kernel send a second request, which consumes the next
 * message too. */
enum sm_result test_iov_transport_readv_page_split(struct sm_ctx *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	struct iovec v[SPREAD];
	char msg1[SPREAD], msg2[SPREAD];
	char *pages = mmap(NULL, SPREAD * (size_t)page, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = -1, i;

	if (pages == MAP_FAILED) {
		sm_fail(ctx, 1, "mmap");
		return SM_FAIL;
	}
	for (i = 0; i < SPREAD; i++) {
		v[i].iov_base = pages + i * page;
		v[i].iov_len = 1;
	}
	memset(msg1, '1', sizeof msg1);
	memset(msg2, '2', sizeof msg2);
	fd = sm_group_fresh(ctx, 0);
	CHECK(fd >= 0, "no group");
	CHECK_RET(write(fd, msg1, sizeof msg1), SPREAD);
	CHECK_RET(write(fd, msg2, sizeof msg2), SPREAD);
	CHECK_RET(write(fd, "third", 5), 5);
	CHECK_RET(raw_readv(fd, v, SPREAD), SPREAD);
	for (i = 0; i < SPREAD; i++)
		CHECK(pages[i * page] == (i < REQ_PAGES ? '1' : '2'),
		      "segment %d holds '%c'", i, pages[i * page]);
	EXPECT_QUEUE("third");
	/* Messages shorter than a request: one message, then the loop ends. */
	CHECK_RET(write(fd, "ab", 2), 2);
	CHECK_RET(write(fd, "cd", 2), 2);
	CHECK_RET(raw_readv(fd, v, SPREAD), 2);
	EXPECT_QUEUE("cd");
	close(fd);
	munmap(pages, SPREAD * (size_t)page);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	munmap(pages, SPREAD * (size_t)page);
	return SM_FAIL;
}

/* FUSE files are non-seekable: positional calls fail ESPIPE untouched; CUSE
 * devices ignore the offset (as the module did). */
enum sm_result test_iov_transport_positional_espipe(struct sm_ctx *ctx)
{
	char a[] = "AAAA", buf[8];
	struct iovec v = { a, 4 }, in = { buf, sizeof buf };
	int fd = sm_group_fresh(ctx, 0);

	if (fd < 0)
		return SM_FAIL;
	if (ctx->transport == SM_CUSE) {
		/* A character device: no seek check, the offset is ignored
		 * (as on the module); each call is one write or read. */
		CHECK_RET(syscall(SYS_pwritev, fd, &v, 1, 0L, 0L), 4);
		CHECK_RET(syscall(SYS_pwrite64, fd, "BBBB", 4, 0L), 4);
		CHECK_RET(syscall(SYS_preadv, fd, &in, 1, 0L, 0L), 4);
		CHECK(memcmp(buf, "AAAA", 4) == 0, "preadv read %.4s, expected AAAA", buf);
		CHECK_RET(syscall(SYS_pread64, fd, buf, sizeof buf, 0L), 4);
		CHECK(memcmp(buf, "BBBB", 4) == 0, "pread read %.4s, expected BBBB", buf);
		EXPECT_EMPTY();
		close(fd);
		return SM_PASS;
	}
	CHECK_ERR(syscall(SYS_pwritev, fd, &v, 1, 0L, 0L), ESPIPE);
	CHECK_ERR(syscall(SYS_pwrite64, fd, a, 4, 0L), ESPIPE);
	EXPECT_EMPTY();
	CHECK_RET(write(fd, "keep", 4), 4);
	CHECK_ERR(syscall(SYS_preadv, fd, &in, 1, 0L, 0L), ESPIPE);
	CHECK_ERR(syscall(SYS_pread64, fd, buf, sizeof buf, 0L), ESPIPE);
	EXPECT_QUEUE("keep");
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

/* A write whose tail is unmapped queues its mapped head and returns its
 * length; one whose head is unmapped fails EFAULT and queues nothing. */
enum sm_result test_iov_transport_write_partly_mapped(struct sm_ctx *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	char *tail_hole = mapped_then_hole(page), *head_hole = hole_then_mapped(page);
	char a[] = "AAAA";
	int fd = -1;

	CHECK(tail_hole && head_hole, "mmap failed");
	memset(tail_hole, 'T', (size_t)page);
	memset(head_hole, 'H', (size_t)page);
	fd = sm_group_fresh(ctx, 0);
	CHECK(fd >= 0, "no group");

	CHECK_RET(write(fd, tail_hole + page - 10, 20), 10);
	EXPECT_QUEUE("TTTTTTTTTT");
	CHECK_ERR(write(fd, head_hole - 10, 20), EFAULT);
	CHECK_ERR(write(fd, tail_hole + page, 20), EFAULT);
	EXPECT_EMPTY();
	/* writev: the mapped part of every segment up to the hole, one message. */
	struct iovec v[3] = { { a, 4 }, { tail_hole + page - 6, 12 }, { a, 4 } };
	CHECK_RET(raw_writev(fd, v, 3), 10);
	EXPECT_QUEUE("AAAATTTTTT");
	struct iovec w[2] = { { a, 4 }, { tail_hole + page, 4 } };
	CHECK_RET(raw_writev(fd, w, 2), 4);
	EXPECT_QUEUE("AAAA");
	close(fd);
	free_holed(tail_hole, page, 0);
	free_holed(head_hole, page, 1);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	if (tail_hole)
		free_holed(tail_hole, page, 0);
	if (head_hole)
		free_holed(head_hole, page, 1);
	return SM_FAIL;
}

/* A read whose tail is unmapped consumes the message and delivers what
 * fits in the mapped head; a head that is unmapped or read-only fails
 * EFAULT and leaves the message queued. */
enum sm_result test_iov_transport_read_partly_mapped(struct sm_ctx *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	char *tail_hole = mapped_then_hole(page), *head_hole = hole_then_mapped(page);
	char *ro = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	const char *msg = "0123456789ABCDEFGHIJ";
	int fd = -1;

	CHECK(tail_hole && head_hole && ro != MAP_FAILED, "mmap failed");
	fd = sm_group_fresh(ctx, 0);
	CHECK(fd >= 0, "no group");

	CHECK_RET(write(fd, msg, 20), 20);
	CHECK_RET(write(fd, "next", 4), 4);
	CHECK_RET(read(fd, tail_hole + page - 10, 20), 10);
	CHECK(memcmp(tail_hole + page - 10, msg, 10) == 0, "wrong head delivered");
	EXPECT_QUEUE("next");
	/* The message fits in the mapped part: all of it. */
	CHECK_RET(write(fd, msg, 20), 20);
	CHECK_RET(read(fd, tail_hole + page - 30, 40), 20);
	EXPECT_EMPTY();

	CHECK_RET(write(fd, msg, 20), 20);
	CHECK_ERR(read(fd, head_hole - 10, 40), EFAULT);
	CHECK_ERR(read(fd, tail_hole + page, 40), EFAULT);
	CHECK_ERR(read(fd, ro, 40), EFAULT);
	EXPECT_QUEUE(msg);
	close(fd);
	free_holed(tail_hole, page, 0);
	free_holed(head_hole, page, 1);
	munmap(ro, (size_t)page);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	if (tail_hole)
		free_holed(tail_hole, page, 0);
	if (head_hole)
		free_holed(head_hole, page, 1);
	if (ro != MAP_FAILED)
		munmap(ro, (size_t)page);
	return SM_FAIL;
}

/* ---- with the shim: the module's semantics -------------------------------- */

static int shim_loaded(struct sm_ctx *ctx)
{
	if (sm_shim_preloaded("writev") && sm_shim_preloaded("readv"))
		return 1;
	snprintf(ctx->reason, sizeof ctx->reason,
		 "neither libsynchmess-fsync.so nor libsynchmess-fast.so preloaded "
		 "(iov-shim-check runs this)");
	return 0;
}

enum sm_result test_iov_shim_writev(struct sm_ctx *ctx)
{
	static char big[3][1000];
	char a[] = "AAAA", b[] = "BBBBBB", c[] = "CC", huge[SM_DEFAULT_MAX_MESSAGE + 1];
	struct iovec v[5] = { { a, 0 }, { a, 4 }, { b, 6 }, { c, 0 }, { c, 2 } };
	struct iovec bv[3] = { { big[0], 1000 }, { big[1], 1000 }, { big[2], 1000 } };
	struct iovec fail2[3] = { { a, 4 }, { huge, sizeof huge }, { c, 2 } };
	int fd;

	if (!shim_loaded(ctx))
		return SM_SKIP;
	fd = sm_group_fresh(ctx, 0);
	if (fd < 0)
		return SM_FAIL;
	CHECK_RET(writev(fd, v, 5), 12);
	EXPECT_QUEUE("AAAA", "BBBBBB", "CC");
	/* Each segment is checked against max_message_size on its own. */
	memset(big, 'm', sizeof big);
	CHECK_RET(writev(fd, bv, 3), 3000);
	for (int i = 0; i < 3; i++) {
		static char in[2000];
		CHECK_RET(read(fd, in, sizeof in), 1000);
		CHECK(memcmp(in, big[i], 1000) == 0, "message %d corrupted", i);
	}
	EXPECT_EMPTY();
	/* An error after a segment went through: that segment's count. */
	memset(huge, 'h', sizeof huge);
	CHECK_RET(writev(fd, fail2, 3), 4);
	EXPECT_QUEUE("AAAA");
	CHECK_ERR(writev(fd, fail2 + 1, 2), EPERM);
	EXPECT_EMPTY();
	/* Positional forms ignore the offset, as the module's write does. */
	CHECK_RET(pwritev(fd, v, 3, 4096), 10);
	CHECK_RET(pwrite(fd, "p", 1, 77), 1);
	EXPECT_QUEUE("AAAA", "BBBBBB", "p");
	close(fd);
	return SM_PASS;
out:
	sm_group_reset(ctx, fd);
	close(fd);
	return SM_FAIL;
}

enum sm_result test_iov_shim_readv(struct sm_ctx *ctx)
{
	char r1[4], r2[8], r3[8];
	struct iovec v[4] = { { r1, 0 }, { r1, 4 }, { r2, 8 }, { r3, 8 } };
	long page = sysconf(_SC_PAGESIZE);
	char *tail_hole = mapped_then_hole(page);
	int fd = -1;

	if (!shim_loaded(ctx)) {
		if (tail_hole)
			free_holed(tail_hole, page, 0);
		return SM_SKIP;
	}
	CHECK(tail_hole != NULL, "mmap failed");
	fd = sm_group_fresh(ctx, 0);
	CHECK(fd >= 0, "no group");
	/* One message per segment; the short second read ends the loop. */
	CHECK_RET(write(fd, "abcd", 4), 4);
	CHECK_RET(write(fd, "second", 6), 6);
	CHECK_RET(write(fd, "third", 5), 5);
	CHECK_RET(readv(fd, v, 4), 10);
	CHECK(memcmp(r1, "abcd", 4) == 0 && memcmp(r2, "second", 6) == 0,
	      "readv put the messages in the wrong segments");
	EXPECT_QUEUE("third");
	/* A longer message fills its segment (the rest is dropped, as read
	 * does) and the loop goes on. */
	CHECK_RET(write(fd, "0123456789", 10), 10);
	CHECK_RET(write(fd, "xy", 2), 2);
	CHECK_RET(readv(fd, v, 4), 6);
	CHECK(memcmp(r1, "0123", 4) == 0 && memcmp(r2, "xy", 2) == 0,
	      "readv after a truncated message");
	EXPECT_EMPTY();
	/* Empty group: 0. */
	CHECK_RET(readv(fd, v, 4), 0);
	/* A segment that faults after one went through: that one's count, the
	 * faulting read consumed nothing. */
	struct iovec f[2] = { { r1, 4 }, { tail_hole + page, 8 } };
	CHECK_RET(write(fd, "abcd", 4), 4);
	CHECK_RET(write(fd, "kept", 4), 4);
	CHECK_RET(readv(fd, f, 2), 4);
	EXPECT_QUEUE("kept");
	/* preadv ignores the offset. */
	CHECK_RET(write(fd, "abcd", 4), 4);
	CHECK_RET(write(fd, "ef", 2), 2);
	CHECK_RET(preadv(fd, v, 4, 12345), 6);
	EXPECT_EMPTY();
	close(fd);
	free_holed(tail_hole, page, 0);
	return SM_PASS;
out:
	if (fd >= 0) {
		sm_group_reset(ctx, fd);
		close(fd);
	}
	if (tail_hole)
		free_holed(tail_hole, page, 0);
	return SM_FAIL;
}
