/*
 * client.h - how the tests reach the daemon: the master, group devices,
 * clocks and bounded waits.
 *
 * Contract: functions that take a ctx record a failure reason with
 * sm_fail() and return -1 when something does not behave; the caller just
 * fails the test.  All waits are bounded.  Thread-safe (no shared state).
 */
#ifndef SYNCHMESS_INTEGRATION_CLIENT_H
#define SYNCHMESS_INTEGRATION_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

/* The master device opened O_RDONLY, or -1. */
int sm_master_open(struct sm_ctx *ctx);

/* The path IOCTL_INSTALL_GROUP must write back for desc. */
void sm_expected_path(const struct sm_ctx *ctx, unsigned desc, char *buf,
		      size_t size);

/* Installs desc, checks the written-back path, waits (bounded) until it is
 * accessible R_OK|W_OK and opens it O_RDWR; returns the fd or -1. */
int sm_group_open(struct sm_ctx *ctx, unsigned desc);

/* Installs and opens desc as another client would: on the peer host with
 * --peer-dev-dir, else on this one (a second open file).  -1 on failure. */
int sm_group_open_other(struct sm_ctx *ctx, unsigned desc);

/* sm_group_open_other of the test's idx-th reserved group (no reset: reset
 * it through sm_group_fresh first). */
int sm_group_other(struct sm_ctx *ctx, unsigned idx);

/* The n-th client of desc: even n on this host, odd n on the peer host (if
 * any), so a test's clients alternate between the hosts. */
int sm_group_open_nth(struct sm_ctx *ctx, unsigned desc, unsigned n);

/* Brings a group to a known state: no delayed messages, delay 0, nobody
 * asleep, queue drained.  0 or -1. */
int sm_group_reset(struct sm_ctx *ctx, int fd);

/* sm_group_open + sm_group_reset of the test's idx-th reserved group. */
int sm_group_fresh(struct sm_ctx *ctx, unsigned idx);

/* IOCTL_SET_SEND_DELAY with the delay passed by pointer, as the original. */
int sm_set_delay(int fd, unsigned ms);

/* Reads until a message arrives or ms elapse; returns the read() result
 * (0 if nothing arrived in time, -1 on error). */
ssize_t sm_read_within(int fd, void *buf, size_t size, unsigned ms);

double sm_now_ms(void);
void sm_sleep_ms(unsigned ms);

/* Absolute CLOCK_REALTIME deadline ms from now (for timed joins). */
struct timespec sm_deadline(unsigned ms);

/* Conditions on a blocked task instead of sleeps hoping it got there.
 * tid is a thread of this process (gettid()) or another process's pid.
 * Both read /proc/TID/syscall (and wchan); they poll every millisecond until
 * the condition holds (0), *done becomes nonzero (1; done may be NULL), or
 * ms pass (-1, reason recorded). */

/* tid is blocked inside ioctl(any fd, request). */
int sm_wait_in_ioctl(struct sm_ctx *ctx, pid_t tid, unsigned long request,
		     const atomic_int *done, unsigned ms);

/* tid is blocked inside poll()/ppoll() and asleep in the kernel's poll wait
 * itself (wchan poll_schedule_timeout), i.e. past the driver's poll
 * callback: on FUSE/CUSE the daemon has answered the POLL request. */
int sm_wait_in_poll(struct sm_ctx *ctx, pid_t tid, const atomic_int *done,
		    unsigned ms);

/* Fills buf with a pattern derived from seed. */
void sm_fill(void *buf, size_t size, unsigned seed);

/* 1 if this process's definition of the libc function fn (e.g. "fsync",
 * "writev") is the fsync shim's: libsynchmess-fsync.so, or
 * libsynchmess-fast.so, which contains the shim.  Then fsync and vectored
 * I/O on the devices have the module's semantics (docs/abi.md). */
int sm_shim_preloaded(const char *fn);

#endif /* SYNCHMESS_INTEGRATION_CLIENT_H */
