/*
 * test_stress.c - many producer and consumer threads on many groups.
 *
 * stress_8x8_64_groups: 8 producers, 8 consumers, all 64 groups, no delay.
 * stress_delayed_flush: 4 producers, 4 consumers, 8 groups with a 20 ms
 * delay, and a thread flushing random groups, so timers and flushes publish
 * delayed messages concurrently (the race the original module had).
 * stress_full_groups: 8 KiB groups, so writes keep failing EPERM and are
 * retried; the storage accounting is checked exactly afterwards.
 *
 * Every message carries its producer, its group, a per-producer sequence
 * number, its length and a checksum (the shared codec, tests/codec).  Checked: no message lost, none
 * duplicated, none corrupted, each delivered on the group it was written
 * to, and for each (producer, group) the sequence numbers come out
 * increasing.  Several consumers read one group at once, so "increasing"
 * is checked per consumer during the run and, after the run, between every
 * message drained and everything consumed before.
 */
#define _GNU_SOURCE
#include "tests.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client.h"
#include "sm_codec.h"

#define NPROD 8 /* at most */
#define NCONS 8 /* at most */
#define NGROUPS MAX_NUM_GROUPS /* at most */
/* Bound of the producing phase. */
#define RUN_BOUND_MS 90000

struct stress;

struct consumer {
	pthread_t thread;
	struct stress *st;
	unsigned id;
	long last[NPROD][NGROUPS]; /* last seq seen, -1 = none */
	long got;
};

struct producer {
	pthread_t thread;
	struct stress *st;
	unsigned id;
	unsigned sent;
	long full_retries;
};

struct stress {
	struct sm_ctx *ctx;
	unsigned nprod, ncons, ngroups;
	unsigned delay_ms; /* 0: no delay, no flusher */
	int fds[NGROUPS];
	unsigned n; /* messages per producer */
	double deadline;
	atomic_int stop;
	atomic_long errors;
	atomic_uchar *seen; /* NPROD * n delivery counters */
};

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void stress_error(struct stress *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void stress_error(struct stress *st, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&st->errors, 1) == 0)
		sm_fail(st->ctx, 0, "%s", msg);
}

/* A message of random length: a pseudo-random body, then the codec's
 * trailer (group is the index 0..63). */
static size_t build(unsigned char *buf, unsigned p, unsigned g, unsigned seq,
		    uint32_t *rnd)
{
	struct smc_fields f = { .producer = p, .group = g, .seq = seq };
	size_t len = SMC_TRAILER_SIZE +
		     xorshift(rnd) % (SM_DEFAULT_MAX_MESSAGE - SMC_TRAILER_SIZE + 1);

	sm_fill(buf, len - SMC_TRAILER_SIZE, p * 1000003u + seq);
	smc_seal(buf, len, &f);
	return len;
}

/* Checks one message read from group index g against last[][]. */
static void verify(struct stress *st, const unsigned char *buf, ssize_t r,
		   unsigned g, long last[NPROD][NGROUPS], const char *who)
{
	struct smc_fields h;
	enum smc_status s = smc_open(buf, r < 0 ? 0 : (size_t)r, &h);

	if (s == SMC_TOO_SHORT) {
		stress_error(st, "%s: %zd-byte message on group %u (too short)", who,
			     r, g + 1);
		return;
	}
	if (s == SMC_BAD_MAGIC || s == SMC_BAD_LENGTH || h.producer >= st->nprod ||
	    h.seq >= st->n) {
		stress_error(st, "%s: malformed %zd-byte message on group %u "
			     "(%s, producer %u seq %llu)", who, r, g + 1,
			     smc_status_text(s), h.producer,
			     (unsigned long long)h.seq);
		return;
	}
	if (s != SMC_OK) {
		stress_error(st, "%s: corrupted message producer %u seq %llu on "
			     "group %u", who, h.producer, (unsigned long long)h.seq,
			     g + 1);
		return;
	}
	if (h.group != g) {
		stress_error(st, "%s: message producer %u seq %llu written to group %u "
			     "was read from group %u", who, h.producer,
			     (unsigned long long)h.seq, h.group + 1u, g + 1);
		return;
	}
	if (atomic_fetch_add(&st->seen[(size_t)h.producer * st->n + h.seq], 1) != 0)
		stress_error(st, "%s: duplicate message producer %u seq %llu on group %u",
			     who, h.producer, (unsigned long long)h.seq, g + 1);
	if ((long)h.seq <= last[h.producer][g])
		stress_error(st, "%s: out of order on group %u: producer %u seq %llu "
			     "after seq %ld", who, g + 1, h.producer,
			     (unsigned long long)h.seq, last[h.producer][g]);
	else
		last[h.producer][g] = (long)h.seq;
}

static void *producer_main(void *arg)
{
	struct producer *pr = arg;
	struct stress *st = pr->st;
	unsigned char buf[SM_DEFAULT_MAX_MESSAGE];
	uint32_t rnd = 0x9E3779B9u ^ (pr->id * 7919u + 1);

	for (unsigned seq = 0; seq < st->n && !atomic_load(&st->stop); seq++) {
		unsigned g = xorshift(&rnd) % st->ngroups;
		size_t len = build(buf, pr->id, g, seq, &rnd);
		for (;;) {
			ssize_t w = write(st->fds[g], buf, len);
			if (w == (ssize_t)len)
				break;
			if (w < 0 && errno == EPERM && sm_now_ms() < st->deadline) {
				pr->full_retries++; /* group full: wait for readers */
				sm_sleep_ms(1);
				continue;
			}
			if (w < 0 && errno == EPERM)
				stress_error(st, "producer %u: group %u still full at the "
					     "deadline", pr->id, g + 1);
			else
				stress_error(st, "producer %u: write of %zu bytes to group "
					     "%u returned %zd (%s)", pr->id, len, g + 1, w,
					     w < 0 ? strerror(errno) : "short");
			return NULL;
		}
		pr->sent++;
		/* With a delay, spread the writes so timers keep firing while
		 * the flusher runs. */
		if (st->delay_ms && seq % 8 == 7)
			sm_sleep_ms(1);
		if (sm_now_ms() > st->deadline) {
			stress_error(st, "producer %u: only %u of %u messages sent within "
				     "%d ms", pr->id, pr->sent, st->n, RUN_BOUND_MS);
			return NULL;
		}
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct consumer *co = arg;
	struct stress *st = co->st;
	unsigned char buf[2 * SM_DEFAULT_MAX_MESSAGE];
	uint32_t rnd = 0x85EBCA6Bu ^ (co->id * 104729u + 1);
	char who[32];

	snprintf(who, sizeof who, "consumer %u", co->id);
	while (!atomic_load(&st->stop)) {
		unsigned g = xorshift(&rnd) % st->ngroups;
		ssize_t r = read(st->fds[g], buf, sizeof buf);
		if (r == 0) {
			sched_yield();
			continue;
		}
		if (r < 0) {
			stress_error(st, "%s: read on group %u failed (%s)", who, g + 1,
				     strerror(errno));
			return NULL;
		}
		co->got++;
		verify(st, buf, r, g, co->last, who);
	}
	return NULL;
}

/* Publishes delayed messages of random groups while the timers do too. */
static void *flusher_main(void *arg)
{
	struct stress *st = arg;
	uint32_t rnd = 0xC2B2AE35u;

	while (!atomic_load(&st->stop)) {
		unsigned g = xorshift(&rnd) % st->ngroups;
		if (ioctl(st->fds[g], IOCTL_FLUSH_DELAYED_MESSAGES) != 0) {
			stress_error(st, "flusher: IOCTL_FLUSH_DELAYED_MESSAGES on group "
				     "%u failed (%s)", g + 1, strerror(errno));
			return NULL;
		}
		sm_sleep_ms(1 + xorshift(&rnd) % 3);
	}
	return NULL;
}

/* Fills every group to exactly its storage limit and drains it again: the
 * accounting must be back at zero after the run. */
static int check_accounting(struct sm_ctx *ctx, struct stress *st,
			    unsigned storage)
{
	char buf[SM_DEFAULT_MAX_MESSAGE];
	unsigned g, i;

	memset(buf, 'a', sizeof buf);
	for (g = 0; g < st->ngroups; g++) {
		for (i = 0; i < storage / SM_CHARGE(sizeof buf); i++)
			CHECK(write(st->fds[g], buf, sizeof buf) == (ssize_t)sizeof buf,
			      "after the run, group %u refused write %u of %u bytes "
			      "(storage accounting leaked?) (%s)", g + 1, i,
			      (unsigned)sizeof buf, strerror(errno));
		/* The rest of the limit takes exactly one more message. */
		size_t rest = storage - i * SM_CHARGE(sizeof buf) - SYNCHMESS_MESSAGE_OVERHEAD;
		CHECK(write(st->fds[g], buf, rest) == (ssize_t)rest,
		      "after the run, group %u refused its last %zu bytes (%s)", g + 1,
		      rest, strerror(errno));
		CHECK(write(st->fds[g], buf, 1) == -1 && errno == EPERM,
		      "after the run, group %u accepted more than %u bytes", g + 1,
		      storage);
		if (sm_group_reset(ctx, st->fds[g]) != 0)
			return -1;
	}
	return 0;
out:
	return -1;
}

static enum sm_result run_stress(struct sm_ctx *ctx, unsigned nprod,
				 unsigned ncons_want, unsigned ngroups,
				 unsigned delay_ms, unsigned n, unsigned storage)
{
	struct synchmess_params saved = { 0 }, small = { 0, storage };
	int master = -1, restore = 0;
	static struct producer prod[NPROD];
	static struct consumer cons[NCONS];
	static long merged[NPROD][NGROUPS];
	static struct stress st;
	unsigned char buf[2 * SM_DEFAULT_MAX_MESSAGE];
	unsigned nrun = 0, ncons = 0, g;
	long drained = 0, consumed = 0, lost = 0, retries = 0;
	pthread_t flusher;
	int flushing = 0;
	double t0;

	memset(&st, 0, sizeof st);
	st.ctx = ctx;
	st.n = n;
	st.nprod = nprod;
	st.ncons = ncons_want;
	st.ngroups = ngroups;
	st.delay_ms = delay_ms;
	atomic_init(&st.stop, 0);
	atomic_init(&st.errors, 0);
	for (g = 0; g < NGROUPS; g++)
		st.fds[g] = -1;
	CHECK(nprod <= NPROD && ncons_want <= NCONS && ngroups <= ctx->ngroups,
	      "test bug: stress sizes");
	st.seen = calloc((size_t)nprod * st.n, sizeof *st.seen);
	CHECK(st.seen != NULL, "out of memory");
	if (storage) {
		master = sm_master_open(ctx);
		if (master < 0)
			goto out;
		CHECK_RET(ioctl(master, IOCTL_GET_PARAMS, &saved), 0);
		errno = 0;
		if (ioctl(master, IOCTL_SET_PARAMS, &small) != 0 && errno == EPERM &&
		    geteuid() != 0) {
			snprintf(ctx->reason, sizeof ctx->reason,
				 "IOCTL_SET_PARAMS needs root");
			close(master);
			free(st.seen);
			return SM_SKIP;
		}
		CHECK(errno == 0, "IOCTL_SET_PARAMS {0, %u} failed (%s)", storage,
		      strerror(errno));
		restore = 1;
	}
	for (g = 0; g < ngroups; g++) {
		st.fds[g] = sm_group_fresh(ctx, g);
		if (st.fds[g] < 0)
			goto out;
		if (delay_ms)
			CHECK_RET(sm_set_delay(st.fds[g], delay_ms), 0);
	}

	t0 = sm_now_ms();
	st.deadline = t0 + RUN_BOUND_MS;
	for (; ncons < ncons_want; ncons++) {
		cons[ncons] = (struct consumer){ .st = &st, .id = ncons };
		memset(cons[ncons].last, 0xFF, sizeof cons[ncons].last); /* -1 */
		int e = pthread_create(&cons[ncons].thread, NULL, consumer_main,
				       &cons[ncons]);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	if (delay_ms) {
		int e = pthread_create(&flusher, NULL, flusher_main, &st);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
		flushing = 1;
	}
	for (; nrun < nprod; nrun++) {
		prod[nrun] = (struct producer){ .st = &st, .id = nrun };
		int e = pthread_create(&prod[nrun].thread, NULL, producer_main,
				       &prod[nrun]);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	/* Producers bound themselves by st.deadline (and the runner's timeout
	 * ends the test if a write never returns). */
	for (unsigned i = 0; i < nrun; i++)
		pthread_join(prod[i].thread, NULL);
	nrun = 0;
	/* Publish what is still delayed while the consumers run. */
	for (g = 0; delay_ms && g < ngroups; g++)
		CHECK_RET(ioctl(st.fds[g], IOCTL_FLUSH_DELAYED_MESSAGES), 0);
	atomic_store(&st.stop, 1);
	for (unsigned i = 0; i < ncons; i++)
		pthread_join(cons[i].thread, NULL);
	ncons = 0;
	if (flushing)
		pthread_join(flusher, NULL);
	flushing = 0;
	double t_run = sm_now_ms() - t0;

	/* Whatever is left, drained single-threaded: it must come after
	 * everything consumed from the same (producer, group). */
	for (unsigned p = 0; p < nprod; p++)
		for (g = 0; g < ngroups; g++) {
			merged[p][g] = -1;
			for (unsigned c = 0; c < ncons_want; c++)
				if (cons[c].last[p][g] > merged[p][g])
					merged[p][g] = cons[c].last[p][g];
		}
	for (g = 0; g < ngroups; g++) {
		ssize_t r;
		double end = sm_now_ms() + 10000;
		while ((r = read(st.fds[g], buf, sizeof buf)) > 0) {
			drained++;
			verify(&st, buf, r, g, merged, "drain");
			CHECK(sm_now_ms() < end, "group %u not drained within 10 s", g + 1);
		}
		CHECK(r == 0, "drain read on group %u failed: %s", g + 1, strerror(errno));
	}

	for (unsigned c = 0; c < ncons_want; c++)
		consumed += cons[c].got;
	for (unsigned p = 0; p < nprod; p++)
		retries += prod[p].full_retries;
	for (size_t i = 0; i < (size_t)nprod * st.n; i++)
		lost += atomic_load(&st.seen[i]) == 0;
	fprintf(stderr, "# stress (%u producers, %u consumers, %u groups, delay %u ms): "
		"%u messages, %ld consumed during the run, %ld drained, %ld "
		"full-group retries, %.0f ms\n", nprod, ncons_want, ngroups, delay_ms,
		nprod * st.n, consumed, drained, retries, t_run);
	CHECK(atomic_load(&st.errors) == 0, "%ld errors (first above)",
	      atomic_load(&st.errors));
	CHECK(lost == 0, "%ld of %u messages lost", lost, nprod * st.n);
	CHECK(consumed + drained == (long)nprod * st.n,
	      "%ld messages delivered for %u sent", consumed + drained, nprod * st.n);
	for (g = 0; g < ngroups; g++)
		CHECK_RET(sm_set_delay(st.fds[g], 0), 0);
	if (storage && check_accounting(ctx, &st, storage) != 0)
		goto out;
	if (restore) {
		CHECK_RET(ioctl(master, IOCTL_SET_PARAMS, &saved), 0);
		restore = 0;
		close(master);
	}
	for (g = 0; g < ngroups; g++)
		close(st.fds[g]);
	free(st.seen);
	return SM_PASS;
out:
	if (restore)
		ioctl(master, IOCTL_SET_PARAMS, &saved);
	atomic_store(&st.stop, 1);
	/* Threads still running end with the test process. */
	for (g = 0; g < NGROUPS; g++)
		if (st.fds[g] >= 0)
			sm_group_reset(ctx, st.fds[g]);
	return SM_FAIL;
}

enum sm_result test_stress(struct sm_ctx *ctx)
{
	return run_stress(ctx, 8, 8, MAX_NUM_GROUPS, 0, ctx->stress_messages, 0);
}

enum sm_result test_stress_delayed_flush(struct sm_ctx *ctx)
{
	return run_stress(ctx, 4, 4, 8, 20, ctx->stress_messages, 0);
}

/* Groups of 8 KiB: writers keep hitting EPERM (full) and retry while
 * readers free space, delayed and immediate alike; afterwards each group
 * must hold exactly 8 KiB again (no leaked or double-freed storage). */
enum sm_result test_stress_full_groups(struct sm_ctx *ctx)
{
	return run_stress(ctx, 4, 2, 4, 5, ctx->stress_messages / 2, 8192);
}
