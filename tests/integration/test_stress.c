/*
 * test_stress.c - 8 producer and 8 consumer threads on all 64 groups.
 *
 * Every message carries its producer, its group, a per-producer sequence
 * number, its length and a checksum.  Checked: no message lost, none
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
#include <unistd.h>

#include "client.h"

#define NPROD 8
#define NCONS 8
#define NGROUPS MAX_NUM_GROUPS
#define MAGIC 0x534D5354u
/* Bound of the producing phase. */
#define RUN_BOUND_MS 90000

struct msg_hdr {
	uint32_t magic;
	uint16_t producer;
	uint16_t group; /* index 0..63 */
	uint32_t seq;
	uint32_t len;   /* whole message, header included */
	uint64_t sum;   /* FNV-1a of the message with sum = 0 */
};

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
	int fds[NGROUPS];
	unsigned n; /* messages per producer */
	double deadline;
	atomic_int stop;
	atomic_long errors;
	atomic_uchar *seen; /* NPROD * n delivery counters */
};

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

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

static size_t build(unsigned char *buf, unsigned p, unsigned g, unsigned seq,
		    uint32_t *rnd)
{
	struct msg_hdr h = { .magic = MAGIC, .producer = (uint16_t)p,
			     .group = (uint16_t)g, .seq = seq };
	size_t len = sizeof h + xorshift(rnd) % (SM_DEFAULT_MAX_MESSAGE - sizeof h + 1);

	h.len = (uint32_t)len;
	sm_fill(buf + sizeof h, len - sizeof h, p * 1000003u + seq);
	memcpy(buf, &h, sizeof h);
	h.sum = fnv1a(buf, len);
	memcpy(buf, &h, sizeof h);
	return len;
}

/* Checks one message read from group index g against last[][]. */
static void verify(struct stress *st, const unsigned char *buf, ssize_t r,
		   unsigned g, long last[NPROD][NGROUPS], const char *who)
{
	struct msg_hdr h, z;

	if (r < (ssize_t)sizeof h) {
		stress_error(st, "%s: %zd-byte message on group %u (too short)", who,
			     r, g + 1);
		return;
	}
	memcpy(&h, buf, sizeof h);
	if (h.magic != MAGIC || h.len != (uint32_t)r || h.producer >= NPROD ||
	    h.seq >= st->n) {
		stress_error(st, "%s: malformed %zd-byte message on group %u "
			     "(magic 0x%x len %u producer %u seq %u)", who, r, g + 1,
			     h.magic, h.len, h.producer, h.seq);
		return;
	}
	z = h;
	z.sum = 0;
	{
		unsigned char copy[SM_DEFAULT_MAX_MESSAGE];
		memcpy(copy, buf, (size_t)r);
		memcpy(copy, &z, sizeof z);
		if (fnv1a(copy, (size_t)r) != h.sum) {
			stress_error(st, "%s: corrupted message producer %u seq %u on "
				     "group %u", who, h.producer, h.seq, g + 1);
			return;
		}
	}
	if (h.group != g) {
		stress_error(st, "%s: message producer %u seq %u written to group %u "
			     "was read from group %u", who, h.producer, h.seq,
			     h.group + 1u, g + 1);
		return;
	}
	if (atomic_fetch_add(&st->seen[(size_t)h.producer * st->n + h.seq], 1) != 0)
		stress_error(st, "%s: duplicate message producer %u seq %u on group %u",
			     who, h.producer, h.seq, g + 1);
	if ((long)h.seq <= last[h.producer][g])
		stress_error(st, "%s: out of order on group %u: producer %u seq %u "
			     "after seq %ld", who, g + 1, h.producer, h.seq,
			     last[h.producer][g]);
	else
		last[h.producer][g] = h.seq;
}

static void *producer_main(void *arg)
{
	struct producer *pr = arg;
	struct stress *st = pr->st;
	unsigned char buf[SM_DEFAULT_MAX_MESSAGE];
	uint32_t rnd = 0x9E3779B9u ^ (pr->id * 7919u + 1);

	for (unsigned seq = 0; seq < st->n && !atomic_load(&st->stop); seq++) {
		unsigned g = xorshift(&rnd) % NGROUPS;
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
		unsigned g = xorshift(&rnd) % NGROUPS;
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

enum sm_result test_stress(struct sm_ctx *ctx)
{
	static struct producer prod[NPROD];
	static struct consumer cons[NCONS];
	static long merged[NPROD][NGROUPS];
	struct stress st;
	unsigned char buf[2 * SM_DEFAULT_MAX_MESSAGE];
	unsigned nprod = 0, ncons = 0, g;
	long drained = 0, consumed = 0, lost = 0, retries = 0;
	double t0;

	memset(&st, 0, sizeof st);
	st.ctx = ctx;
	st.n = ctx->stress_messages;
	atomic_init(&st.stop, 0);
	atomic_init(&st.errors, 0);
	for (g = 0; g < NGROUPS; g++)
		st.fds[g] = -1;
	st.seen = calloc((size_t)NPROD * st.n, sizeof *st.seen);
	CHECK(st.seen != NULL, "out of memory");
	CHECK(ctx->ngroups == NGROUPS, "test bug: stress needs all 64 groups");
	for (g = 0; g < NGROUPS; g++) {
		st.fds[g] = sm_group_fresh(ctx, g);
		if (st.fds[g] < 0)
			goto out;
	}

	t0 = sm_now_ms();
	st.deadline = t0 + RUN_BOUND_MS;
	for (; ncons < NCONS; ncons++) {
		cons[ncons] = (struct consumer){ .st = &st, .id = ncons };
		memset(cons[ncons].last, 0xFF, sizeof cons[ncons].last); /* -1 */
		int e = pthread_create(&cons[ncons].thread, NULL, consumer_main,
				       &cons[ncons]);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	for (; nprod < NPROD; nprod++) {
		prod[nprod] = (struct producer){ .st = &st, .id = nprod };
		int e = pthread_create(&prod[nprod].thread, NULL, producer_main,
				       &prod[nprod]);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	/* Producers bound themselves by st.deadline (each write also returns
	 * or the runner's timeout ends the test). */
	for (unsigned i = 0; i < nprod; i++)
		pthread_join(prod[i].thread, NULL);
	nprod = 0;
	atomic_store(&st.stop, 1);
	for (unsigned i = 0; i < ncons; i++)
		pthread_join(cons[i].thread, NULL);
	ncons = 0;
	double t_run = sm_now_ms() - t0;

	/* Whatever is left, drained single-threaded: it must come after
	 * everything consumed from the same (producer, group). */
	for (unsigned p = 0; p < NPROD; p++)
		for (g = 0; g < NGROUPS; g++) {
			merged[p][g] = -1;
			for (unsigned c = 0; c < NCONS; c++)
				if (cons[c].last[p][g] > merged[p][g])
					merged[p][g] = cons[c].last[p][g];
		}
	for (g = 0; g < NGROUPS; g++) {
		ssize_t r;
		double end = sm_now_ms() + 10000;
		while ((r = read(st.fds[g], buf, sizeof buf)) > 0) {
			drained++;
			verify(&st, buf, r, g, merged, "drain");
			CHECK(sm_now_ms() < end, "group %u not drained within 10 s", g + 1);
		}
		CHECK(r == 0, "drain read on group %u failed: %s", g + 1, strerror(errno));
	}

	for (unsigned c = 0; c < NCONS; c++)
		consumed += cons[c].got;
	for (unsigned p = 0; p < NPROD; p++)
		retries += prod[p].full_retries;
	for (size_t i = 0; i < (size_t)NPROD * st.n; i++)
		lost += atomic_load(&st.seen[i]) == 0;
	fprintf(stderr, "# stress: %u messages, %ld consumed during the run, %ld "
		"drained, %ld full-group retries, %.0f ms\n", NPROD * st.n, consumed,
		drained, retries, t_run);
	CHECK(atomic_load(&st.errors) == 0, "%ld errors (first above)",
	      atomic_load(&st.errors));
	CHECK(lost == 0, "%ld of %u messages lost", lost, NPROD * st.n);
	CHECK(consumed + drained == (long)NPROD * st.n,
	      "%ld messages delivered for %u sent", consumed + drained, NPROD * st.n);
	for (g = 0; g < NGROUPS; g++)
		close(st.fds[g]);
	free(st.seen);
	return SM_PASS;
out:
	atomic_store(&st.stop, 1);
	/* Threads still running end with the test process. */
	for (g = 0; g < NGROUPS; g++)
		if (st.fds[g] >= 0)
			sm_group_reset(ctx, st.fds[g]);
	return SM_FAIL;
}
