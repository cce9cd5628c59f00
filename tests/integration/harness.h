/*
 * harness.h - the test harness of synchmess-integration.
 *
 * Contract: every test is a function that gets a fresh context and returns
 * SM_PASS, SM_FAIL (with ctx->reason set) or SM_SKIP.  The runner forks one
 * child process per test, so a test may leave threads blocked in the daemon,
 * install signal handlers or die without hurting the others; the parent
 * bounds every test with a deadline and kills a child that overruns it.
 *
 * Thread safety: sm_fail() may be called from any thread of a test; the
 * first reason wins.  Everything else is for the test's main thread.
 */
#ifndef SYNCHMESS_INTEGRATION_HARNESS_H
#define SYNCHMESS_INTEGRATION_HARNESS_H

#include <stddef.h>

#include "synchmess_interface.h"

enum sm_transport { SM_CUSE, SM_FUSE };

enum sm_result { SM_PASS = 0, SM_FAIL = 1, SM_SKIP = 2 };

/* Defaults of the daemon's run-time parameters (abi.md). */
#define SM_DEFAULT_MAX_MESSAGE 1024u
#define SM_DEFAULT_MAX_STORAGE 1048576u
/* What a stored message of n bytes counts against the storage limit. */
#define SM_CHARGE(n) ((n) + SYNCHMESS_MESSAGE_OVERHEAD)

struct sm_ctx {
	const char *dev_dir;            /* where the master lives */
	/* --peer-dev-dir: a second host's master serving the same groups
	 * (synchmessd --cluster), or NULL.  Tests open their "other" clients
	 * there (sm_group_other); the checks stay those of abi.md. */
	const char *peer_dir;
	enum sm_transport transport;
	unsigned groups[MAX_NUM_GROUPS]; /* descriptors reserved for this test */
	unsigned ngroups;
	unsigned stress_messages;       /* per producer */
	char reason[512];
};

typedef enum sm_result (*sm_test_fn)(struct sm_ctx *ctx);

struct sm_test {
	const char *name;
	sm_test_fn fn;
	unsigned ngroups;   /* fresh group descriptors the test needs */
	unsigned timeout_s; /* wall-clock bound of the whole test */
};

/* Records the first failure reason; with_errno appends strerror(errno)
 * (errno as it was when sm_fail was entered). */
void sm_fail(struct sm_ctx *ctx, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Runs the tests whose name contains filter (NULL = all); prints one line
 * per test and the summary; returns the number of failures. */
int sm_run(const struct sm_test *tests, size_t ntests, struct sm_ctx *proto,
	   const char *filter);

/* Check helpers: on failure they record a reason and jump to `out`. */
#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			sm_fail(ctx, 0, __VA_ARGS__);                      \
			goto out;                                          \
		}                                                          \
	} while (0)

/* expr is a system call returning -1 on error. */
#define CHECK_SYS(expr)                                                    \
	do {                                                               \
		if ((expr) < 0) {                                          \
			sm_fail(ctx, 1, "%s failed", #expr);               \
			goto out;                                          \
		}                                                          \
	} while (0)

/* expr must fail with -1 and errno == err. */
#define CHECK_ERR(expr, err)                                               \
	do {                                                               \
		errno = 0;                                                 \
		long check_err_r_ = (long)(expr);                          \
		if (check_err_r_ != -1) {                                  \
			sm_fail(ctx, 0, "%s returned %ld, expected -1 %s", \
				#expr, check_err_r_, sm_errname(err));     \
			goto out;                                          \
		}                                                          \
		if (errno != (err)) {                                      \
			sm_fail(ctx, 1, "%s failed with %s, expected %s",  \
				#expr, sm_errname(errno), sm_errname(err)); \
			goto out;                                          \
		}                                                          \
	} while (0)

/* expr (a system call) must return exactly want. */
#define CHECK_RET(expr, want)                                              \
	do {                                                               \
		errno = 0;                                                 \
		long check_ret_r_ = (long)(expr);                          \
		if (check_ret_r_ != (long)(want)) {                        \
			sm_fail(ctx, check_ret_r_ < 0,                     \
				"%s returned %ld, expected %ld", #expr,    \
				check_ret_r_, (long)(want));               \
			goto out;                                          \
		}                                                          \
	} while (0)

const char *sm_errname(int err);

#endif /* SYNCHMESS_INTEGRATION_HARNESS_H */
