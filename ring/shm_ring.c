/* shm_ring.c - the lock-free byte ring of shm_ring.h.
 *
 * Why hand-written: no Debian library offers a multi-process MPMC queue
 * whose memory may be scribbled by any participant (Boost.Interprocess and
 * liblfds trust their shared memory; the daemon must not).
 *
 * Invariants (positions in 8-byte units, modulo r->modulus; F = free,
 * H = head, T = tail's position, all non-decreasing):
 *  I1. F <= H <= T and T - F <= cap_units.
 *  I2. Every record in [F, T) but the newest reservation (T - tail.last)
 *      has word0 tagged with its own position; the newest gets it within two
 *      steps of its writer, or from the sweep (DEAD).
 *  I3. [H, T): RESERVED, COMMITTED, or already passed over states; head only
 *      passes CLAIMED, RELEASED, DEAD, PAD records.  [F, H): CLAIMED,
 *      RELEASED, DEAD, PAD, FREED.
 *  I4. Bytes in [T, F + cap) are zero except word0s of freed records of the
 *      previous lap (FREED, tagged with their old positions).
 *  I5. Exactly one thread moves a record to FREED, and only it (or the
 *      sweep after a stall) advances free past it.
 */
#include "ring/shm_ring.h"

#include <sched.h>
#include <string.h>

#define SEQ __ATOMIC_SEQ_CST

enum {
  ST_NONE = 0,
  ST_RESERVED = 1,
  ST_COMMITTED = 2,
  ST_CLAIMED = 3,
  ST_RELEASED = 4,
  ST_DEAD = 5,
  ST_PAD = 6,
  ST_FREED = 7,
};

#define SIZE_BITS 14u
#define SIZE_MASK ((1ull << SIZE_BITS) - 1)
#define TAG_SHIFT 18u
#define TAG_MASK ((1ull << 46) - 1)
#define POS_LIMIT (1ull << 50)
#define RETIRED_LAST SIZE_MASK /* tail's size field of a retired ring: no record has it */
#define RETRIES 256
#define OVERHEAD 64u /* SYNCHMESS_MESSAGE_OVERHEAD; ring/ may not include interface/ */
/* word1: length (bits 0-28), who the pid (bits 32-63) is: the writer that
 * holds the reservation, the reader that claimed the record, the process
 * that frees it.  The sweep gives a stuck record up after one stall bound
 * only when word1 names the process stuck in it and that process is gone;
 * without a role it cannot tell (a process between two steps), and waits
 * the live bound. */
#define W1_LEN 0x1fffffffull
#define W1_WRITER (1ull << 31)
#define W1_READER (1ull << 30)
#define W1_FREER (1ull << 29)

struct seg_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;
  uint64_t capacity;
  uint64_t generation;
  uint64_t max_message;
  uint64_t max_storage;
  uint64_t delay_ms;
  uint64_t pad0;
  uint64_t tail;  /* (position << 14) | size of the newest reservation */
  uint64_t free_seen; /* writers' hint: a value free had (see writer_view) */
  uint64_t pad1[6];
  uint64_t head;
  uint64_t pad2[7];
  uint64_t free;
  uint64_t pad3[7];
  uint64_t stored;
  uint64_t pad4[7];
  uint64_t pollers;
  uint64_t pad5[7];
  uint64_t fast_sent; /* statistics hints (shm_ring_note_sent): each on a line of its own */
  uint64_t pad6[7];
  uint64_t fast_received;
};
_Static_assert(sizeof(struct seg_header) <= SHM_RING_HEADER_BYTES, "header fits its page");

static inline struct seg_header* hdr(const struct shm_ring* r) { return (struct seg_header*)r->base; }
static inline uint64_t ld(const uint64_t* p) { return __atomic_load_n(p, SEQ); }
static inline void st(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, SEQ); }
/* A release store (a plain store on x86, where st is an xchg).  Used only
 * for a reader's or freer's word1 and the zeroing of a freed record (a
 * writer's word1 is st: see write_impl): no other thread's decision
 * depends on such a store being ordered before a later LOAD of this thread
 * (no Dekker pattern); what a later reader of the record needs is that the
 * store is visible before the CAS that publishes the next step (claim,
 * head, release, free), and every CAS here is a full barrier. */
static inline void st_rel(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int cas(uint64_t* p, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, 0, SEQ, SEQ);
}

static inline uint64_t add(const struct shm_ring* r, uint64_t a, uint64_t n) {
  uint64_t s = a + n;
  return s >= r->modulus ? s - r->modulus : s;
}
static inline uint64_t sub(const struct shm_ring* r, uint64_t a, uint64_t n) {
  return a >= n ? a - n : a + r->modulus - n;
}
/* Units from a forward to b. */
static inline uint64_t dist(const struct shm_ring* r, uint64_t a, uint64_t b) {
  return b >= a ? b - a : b + r->modulus - a;
}
static inline uint64_t* word(const struct shm_ring* r, uint64_t pos) {
  return (uint64_t*)(r->base + SHM_RING_HEADER_BYTES) + pos % r->cap_units;
}
static inline uint64_t mk(unsigned state, uint64_t size, uint64_t pos) {
  return (uint64_t)state | (size << 4) | ((pos & TAG_MASK) << TAG_SHIFT);
}
static inline unsigned state_of(uint64_t w) { return (unsigned)(w & 15u); }
static inline uint64_t size_of(uint64_t w) { return (w >> 4) & SIZE_MASK; }
static inline int tagged(uint64_t w, uint64_t pos) {
  return state_of(w) != ST_NONE && (w >> TAG_SHIFT) == (pos & TAG_MASK);
}
/* Units of a record holding len bytes. */
static inline uint64_t units_for(uint64_t len) { return 2 + (len + 7) / 8; }
static inline int len_fits(uint64_t len, uint64_t size) {
  return len >= 1 && len <= SHM_RING_MAX_PAYLOAD && units_for(len) == size;
}

static void backoff(int attempt) {
  if (attempt >= 8) sched_yield();
}

uint64_t shm_ring_segment_bytes(uint64_t max_storage) {
  uint64_t largest = SHM_RING_RECORD_HEADER + SHM_RING_MAX_PAYLOAD;
  uint64_t bytes = SHM_RING_HEADER_BYTES + max_storage + 4 * largest;
  return (bytes + 4095) & ~(uint64_t)4095;
}

static int fill(struct shm_ring* r, void* mem, uint64_t capacity) {
  if (capacity % 8 != 0 || capacity / 8 < units_for(SHM_RING_MAX_PAYLOAD) || capacity / 8 >= POS_LIMIT)
    return -1;
  r->base = (unsigned char*)mem;
  r->capacity = capacity;
  r->cap_units = capacity / 8;
  r->modulus = r->cap_units * (POS_LIMIT / r->cap_units);
  return 0;
}

int shm_ring_format(struct shm_ring* r, void* mem, uint64_t segment_bytes, uint64_t max_message,
                    uint64_t max_storage, uint64_t generation, int data_is_zero) {
  if (segment_bytes <= SHM_RING_HEADER_BYTES) return -1;
  uint64_t capacity = (segment_bytes - SHM_RING_HEADER_BYTES) & ~(uint64_t)7;
  if (fill(r, mem, capacity) != 0) return -1;
  struct seg_header* h = hdr(r);
  /* Positions first, so a concurrent client sees an empty ring, then the
   * data, then the identity. */
  st(&h->tail, 0);
  st(&h->free_seen, 0);
  st(&h->head, 0);
  st(&h->free, 0);
  st(&h->stored, 0);
  st(&h->pollers, 0);
  st(&h->delay_ms, 0);
  __atomic_store_n(&h->fast_sent, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->fast_received, 0, __ATOMIC_RELAXED);
  if (!data_is_zero) memset(r->base + SHM_RING_HEADER_BYTES, 0, capacity);
  h->version = SHM_RING_VERSION;
  h->header_bytes = SHM_RING_HEADER_BYTES;
  h->capacity = capacity;
  h->generation = generation;
  shm_ring_set_limits(r, max_message, max_storage);
  st(&h->magic, SHM_RING_MAGIC);
  return 0;
}

int shm_ring_attach(struct shm_ring* r, void* mem, uint64_t mapped_bytes) {
  if (mapped_bytes <= SHM_RING_HEADER_BYTES) return -1;
  const struct seg_header* h = (const struct seg_header*)mem;
  if (__atomic_load_n(&h->magic, SEQ) != SHM_RING_MAGIC || h->version != SHM_RING_VERSION ||
      h->header_bytes != SHM_RING_HEADER_BYTES)
    return -1;
  uint64_t capacity = h->capacity;
  if (capacity > mapped_bytes - SHM_RING_HEADER_BYTES) return -1;
  return fill(r, mem, capacity);
}

void shm_ring_set_limits(const struct shm_ring* r, uint64_t max_message, uint64_t max_storage) {
  st(&hdr(r)->max_message, max_message);
  st(&hdr(r)->max_storage, max_storage);
}

void shm_ring_limits(const struct shm_ring* r, uint64_t* max_message, uint64_t* max_storage) {
  *max_message = ld(&hdr(r)->max_message);
  *max_storage = ld(&hdr(r)->max_storage);
}

int shm_ring_charge(const struct shm_ring* r, uint64_t bytes, uint64_t max_storage) {
  uint64_t* stored = &hdr(r)->stored;
  uint64_t used = ld(stored);
  do {
    if (bytes > max_storage || used > max_storage - bytes) return 0;
  } while (!__atomic_compare_exchange_n(stored, &used, used + bytes, 1, SEQ, SEQ));
  return 1;
}

/* Never below 0: a scribbled counter must not wrap into "full forever". */
void shm_ring_uncharge(const struct shm_ring* r, uint64_t bytes) {
  uint64_t* stored = &hdr(r)->stored;
  uint64_t used = ld(stored);
  while (!__atomic_compare_exchange_n(stored, &used, used >= bytes ? used - bytes : 0, 1, SEQ, SEQ)) {
  }
}

uint64_t shm_ring_stored(const struct shm_ring* r) { return ld(&hdr(r)->stored); }

void shm_ring_set_pollers(const struct shm_ring* r, int waiting) { st(&hdr(r)->pollers, waiting ? 1 : 0); }
int shm_ring_pollers(const struct shm_ring* r) { return ld(&hdr(r)->pollers) != 0; }

void shm_ring_note_sent(const struct shm_ring* r) {
  __atomic_fetch_add(&hdr(r)->fast_sent, 1, __ATOMIC_RELAXED);
}
void shm_ring_note_received(const struct shm_ring* r) {
  __atomic_fetch_add(&hdr(r)->fast_received, 1, __ATOMIC_RELAXED);
}
void shm_ring_fast_counts(const struct shm_ring* r, uint64_t* sent, uint64_t* received) {
  *sent = __atomic_load_n(&hdr(r)->fast_sent, __ATOMIC_RELAXED);
  *received = __atomic_load_n(&hdr(r)->fast_received, __ATOMIC_RELAXED);
}

/* free, head and tail as one consistent view (I1), or -1 after retries. */
struct view {
  uint64_t f, h, t, last;
  int retired; /* then last reads 0: every record in the ring has its word0 */
};
/* with_head 0: a writer's view, v->h = v->f (a writer needs free and tail
 * only; not loading head keeps the readers' line out of the writers'
 * caches: one coherence miss less per message on each side). */
static int load_view_of(const struct shm_ring* r, struct view* v, int with_head) {
  struct seg_header* s = hdr(r);
  for (int i = 0; i < RETRIES; ++i) {
    v->f = ld(&s->free);
    v->h = with_head ? ld(&s->head) : v->f;
    uint64_t t = ld(&s->tail);
    v->t = t >> SIZE_BITS;
    v->last = t & SIZE_MASK;
    v->retired = v->last == RETIRED_LAST;
    if (v->retired) v->last = 0;
    if (v->f >= r->modulus || v->h >= r->modulus || v->t >= r->modulus) return -1;
    uint64_t fh = dist(r, v->f, v->h), ft = dist(r, v->f, v->t);
    if (fh <= ft && ft <= r->cap_units) return 0;
    /* A concurrent lap can make a view inconsistent: look again, unless
     * nothing moves (then it is corruption). */
    if (ld(&s->free) == v->f && (!with_head || ld(&s->head) == v->h) &&
        (ld(&s->tail) >> SIZE_BITS) == v->t && i > 4)
      return -1;
    backoff(i);
  }
  return -1;
}
static int load_view(const struct shm_ring* r, struct view* v) { return load_view_of(r, v, 1); }

/* A writer's view from the tail's own line when it shows room for `need`
 * units: free_seen is a value free had once (writers store what they load),
 * and free never moves back, so free_seen <= free now and the room it shows
 * (free_seen + cap - tail) is at most the true room; the tail CAS then
 * checks tail did not move.  Only when the hint shows no room (or does not
 * fit: stale by a lap, a client's scribble) is free itself loaded (and the
 * hint refreshed), so a writer loads the readers' free line once per
 * (ring capacity - stored bytes) written, not on every message.  A FULL
 * answer always comes from the true free.  A forged hint that shows room
 * where there is none overwrites that group's unread records only (as a
 * forged free or tail would); offsets stay modulo the capacity. */
static int writer_view(const struct shm_ring* r, struct view* v, uint64_t need) {
  struct seg_header* s = hdr(r);
  /* Acquire/release on the hint: the zeroing of the space it shows as room
   * happened before the free CAS that the storing writer loaded, so the
   * chain freer -> that writer -> this one orders the zeroing before our
   * copy (plain loads and stores on x86). */
  uint64_t t = ld(&s->tail), f = __atomic_load_n(&s->free_seen, __ATOMIC_ACQUIRE);
  v->t = t >> SIZE_BITS;
  v->last = t & SIZE_MASK;
  v->retired = v->last == RETIRED_LAST;
  if (v->retired) v->last = 0;
  if (f < r->modulus && v->t < r->modulus && v->last <= r->cap_units && dist(r, f, v->t) + need <= r->cap_units) {
    v->f = v->h = f;
    return 0;
  }
  if (load_view_of(r, v, 0) != 0) return -1;
  /* A CAS from the hint we saw, not a store: a format (which resets the
   * hint) between our load of free and here makes it fail, so a free of
   * the ring before the format never becomes the hint of the new one; and
   * a newer hint another writer stored stays. */
  __atomic_compare_exchange_n(&s->free_seen, &f, v->f, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  return 0;
}

/* Zeroes a freed record after its word0: the payload with memset (only the
 * record's owner ever reads or writes it), word1 last with an atomic store
 * (the sweep and shm_ring_count read it atomically at any time).  pid: the
 * freer's, in word1 while it zeroes (the sweep then knows whom to wait for);
 * 0 for the sweep itself. */
static void zero_body(uint64_t* w0, uint64_t size, uint32_t pid) {
  /* Release stores: the sweep reads word1 only after it saw the same
   * FREED word0 stuck for a stall bound (no ordering against our later
   * loads needed), and the CAS on free that ends the freeing orders the
   * zeros before the space can be reserved again. */
  if (size > 1 && pid != 0) st_rel(w0 + 1, W1_FREER | ((uint64_t)pid << 32));
  if (size > 2) memset(w0 + 2, 0, (size - 2) * 8);
  if (size > 1) st_rel(w0 + 1, 0);
}

/* Frees released, dead and pad records at free, in order (I5). */
static void advance_free(const struct shm_ring* r, uint32_t pid) {
  struct seg_header* s = hdr(r);
  /* At most one ring's worth zeroed per call: all an honest ring can hold
   * released; a client that keeps moving free back and forging released
   * records cannot make one call (the sweep's) zero gigabytes. */
  uint64_t zeroed = 0;
  for (int i = 0; i < RETRIES * 64 && zeroed <= r->cap_units; ++i) {
    uint64_t f = ld(&s->free), h = ld(&s->head);
    if (f >= r->modulus || h >= r->modulus || f == h || dist(r, f, h) > r->cap_units) return;
    uint64_t* w0 = word(r, f);
    uint64_t w = ld(w0);
    if (!tagged(w, f)) return;
    unsigned state = state_of(w);
    uint64_t size = size_of(w);
    if (size == 0 || f % r->cap_units + size > r->cap_units || size > dist(r, f, h)) return;
    if (state != ST_RELEASED && state != ST_DEAD && state != ST_PAD) return;
    if (!cas(w0, w, mk(ST_FREED, size, f))) continue;
    zeroed += size;
    zero_body(w0, size, pid);
    cas(&s->free, f, add(r, f, size));
  }
}

static enum shm_ring_status write_impl(const struct shm_ring* r, const void* data, size_t len,
                                       uint64_t max_message, uint64_t max_storage, uint32_t pid,
                                       int precharged) {
  if (len == 0) return SHM_RING_OK;
  if (len > max_message || len > SHM_RING_MAX_PAYLOAD) return SHM_RING_TOO_BIG;
  struct seg_header* s = hdr(r);
  const uint64_t size = units_for(len), charge = (uint64_t)len + OVERHEAD;
  int charged = precharged;
  enum shm_ring_status result = SHM_RING_BUSY;
  for (int i = 0; i < RETRIES; ++i) {
    if ((ld(&s->tail) & SIZE_MASK) == RETIRED_LAST) {
      result = SHM_RING_RETIRED;
      break;
    }
    if (!charged) {
      if (!shm_ring_charge(r, charge, max_storage)) return SHM_RING_FULL;
      charged = 1;
    }
    struct view v;
    /* Room for a pad to the end and the record, whatever the offset. */
    if (writer_view(r, &v, 2 * size) != 0) {
      result = SHM_RING_CORRUPT;
      break;
    }
    if (v.retired) {
      result = SHM_RING_RETIRED;
      break;
    }
    uint64_t t = (v.t << SIZE_BITS) | v.last;
    if (v.last != 0) {
      uint64_t p = sub(r, v.t, v.last);
      if (!tagged(ld(word(r, p)), p)) {  /* its writer is between two steps */
        result = SHM_RING_BUSY;
        backoff(i);
        continue;
      }
    }
    uint64_t used = dist(r, v.f, v.t), off = v.t % r->cap_units, to_end = r->cap_units - off;
    uint64_t need = size > to_end ? to_end + size : size;
    if (used + need > r->cap_units) {
      /* Readers still copying, or a ring smaller than the limit allows. */
      advance_free(r, pid);
      result = SHM_RING_FULL;
      backoff(i);
      if (i >= 32) break;
      continue;
    }
    if (size > to_end) {  /* pad to the end, then start over at 0 */
      if (cas(&s->tail, t, (add(r, v.t, to_end) << SIZE_BITS) | to_end)) {
        uint64_t* w0 = word(r, v.t);
        if (to_end > 1) st(w0 + 1, W1_WRITER | ((uint64_t)pid << 32));
        uint64_t w = ld(w0);
        if (!tagged(w, v.t)) cas(w0, w, mk(ST_PAD, to_end, v.t));
      }
      continue;
    }
    if (!cas(&s->tail, t, (add(r, v.t, size) << SIZE_BITS) | size)) continue;
    uint64_t* w0 = word(r, v.t);
    /* Sequentially consistent, not release: this store then our load of
     * word0 against the sweep's CAS of word0 to DEAD then its load of word1
     * (release_dead_charge) is a Dekker pattern.  A release store could
     * pass our load (x86's store buffer): we would see word0 unset, the
     * sweep word1 still 0, so it would release no charge while our CAS
     * fails and we drop ours: one message's charge leaked. */
    st(w0 + 1, (uint64_t)len | W1_WRITER | ((uint64_t)pid << 32));
    uint64_t w = ld(w0);
    if (tagged(w, v.t) || !cas(w0, w, mk(ST_RESERVED, size, v.t))) {
      charged = 0;  /* the sweep declared it dead and released the charge */
      continue;
    }
    memcpy(w0 + 2, data, len);
    if (!cas(w0, mk(ST_RESERVED, size, v.t), mk(ST_COMMITTED, size, v.t))) {
      charged = 0;
      continue;
    }
    return SHM_RING_OK;
  }
  if (charged && !precharged) shm_ring_uncharge(r, charge);
  return result;
}

enum shm_ring_status shm_ring_write(const struct shm_ring* r, const void* data, size_t len,
                                    uint64_t max_message, uint64_t max_storage, uint32_t pid) {
  return write_impl(r, data, len, max_message, max_storage, pid, 0);
}

enum shm_ring_status shm_ring_write_charged(const struct shm_ring* r, const void* data, size_t len,
                                            uint32_t pid) {
  return write_impl(r, data, len, SHM_RING_MAX_PAYLOAD, UINT64_MAX, pid, 1);
}

/* Readers free in batches: a reader frees (advance_free) once this many
 * units (or 1/16 of the ring) lie released between free and head, not after
 * every read.  Each record is still freed by the one thread whose CAS sets
 * FREED (I5), so the sweep's rules are unchanged; what waits is only the
 * room (a writer short of room frees first, the sweep frees every pass,
 * shm_ring_idle frees before it answers).  In a busy ring this keeps free's
 * line and the zeroing stores in the readers' caches: the writers load free
 * for their room check and would otherwise miss on it after every read. */
#define FREE_BATCH 1024u

static void free_batch(const struct shm_ring* r, uint64_t head, uint32_t pid) {
  uint64_t f = ld(&hdr(r)->free), batch = r->cap_units / 16;
  if (batch > FREE_BATCH) batch = FREE_BATCH;
  if (f < r->modulus && dist(r, f, head) < batch) return;
  advance_free(r, pid);
}

/* The rest of a read once this thread's CAS made the record at pos
 * CLAIMED (the linearization point of the read). */
static enum shm_ring_status take(const struct shm_ring* r, uint64_t* w0, uint64_t pos, uint64_t size,
                                 shm_ring_consumer fn, void* ctx, uint32_t pid) {
  /* Name the claimer first: until then the sweep cannot tell who holds the
   * record (word1 still names its writer).  A release store is enough: the
   * sweep reads word1 only after CLAIMED stayed a stall bound, and the head
   * CAS next is a full barrier. */
  uint64_t len = ld(w0 + 1) & W1_LEN;
  st_rel(w0 + 1, len | W1_READER | ((uint64_t)pid << 32));
  uint64_t next = add(r, pos, size);
  cas(&hdr(r)->head, pos, next);
  enum shm_ring_status out = SHM_RING_OK;
  if (!len_fits(len, size)) {
    out = SHM_RING_CORRUPT;  /* unreadable: skip it, keep the ring going */
  } else {
    /* Uncharged here, at every read, not in batches like the freeing: a
     * charge left pending would count against the limit after its read
     * (EPERM where the device accepts), and neither a writer nor the sweep
     * could settle it: a batch pending in a reader stopped or preempted,
     * or uncharged at the in-order free, would wait behind the oldest
     * record still being copied. */
    shm_ring_uncharge(r, len + OVERHEAD);
    fn((const unsigned char*)(w0 + 2), (size_t)len, ctx);
  }
  /* A CAS, not a store: after the live bound the sweep may have released
   * the record itself, and it may be reused by now. */
  cas(w0, mk(ST_CLAIMED, size, pos), mk(ST_RELEASED, size, pos));
  free_batch(r, next, pid);
  return out;
}

enum shm_ring_status shm_ring_read_with(const struct shm_ring* r, shm_ring_consumer fn, void* ctx,
                                        uint32_t pid) {
  struct seg_header* s = hdr(r);
  /* The common case first: the record at head is committed.  Only head and
   * the record's word0 are loaded (not tail, which the writers change on
   * every message; free only in the batch check after the read, a line
   * the readers themselves write): a record tagged with position h0 was
   * reserved there by a writer (positions are not reused within a modulus
   * lap), so h0 < tail; a COMMITTED one is not passed over yet (head passes
   * only CLAIMED, RELEASED, DEAD, PAD and FREED records, I3), so head is
   * still h0 when the claim CAS succeeds.  Its size is bounded by the end
   * of the data area here; a forged size reaching past tail (a client
   * scribbling the segment) breaks I1, which every view then reports as
   * CORRUPT and the daemon's sweep repairs: that group's messages only. */
  uint64_t h0 = ld(&s->head);
  if (h0 < r->modulus) {
    uint64_t* w0 = word(r, h0);
    uint64_t w = ld(w0), size = size_of(w);
    if (tagged(w, h0) && state_of(w) == ST_COMMITTED && size != 0 && h0 % r->cap_units + size <= r->cap_units &&
        cas(w0, w, mk(ST_CLAIMED, size, h0)))
      return take(r, w0, h0, size, fn, ctx, pid);
  }
  enum shm_ring_status result = SHM_RING_BUSY;
  for (int i = 0; i < RETRIES; ++i) {
    struct view v;
    if (load_view(r, &v) != 0) return SHM_RING_CORRUPT;
    uint64_t avail = dist(r, v.h, v.t);
    if (avail == 0) return v.retired ? SHM_RING_RETIRED : SHM_RING_EMPTY;
    uint64_t* w0 = word(r, v.h);
    uint64_t w = ld(w0);
    if (!tagged(w, v.h)) {
      if (ld(&s->head) != v.h) continue;
      /* Only the newest reservation may lack its word0 (I2). */
      if (v.h != sub(r, v.t, v.last)) return SHM_RING_CORRUPT;
      result = SHM_RING_BUSY;
      backoff(i);
      continue;
    }
    uint64_t size = size_of(w);
    if (size == 0 || v.h % r->cap_units + size > r->cap_units || size > avail) return SHM_RING_CORRUPT;
    switch (state_of(w)) {
      case ST_RESERVED:  /* the oldest message is being copied in */
        result = SHM_RING_BUSY;
        backoff(i);
        continue;
      case ST_COMMITTED:
        if (!cas(w0, w, mk(ST_CLAIMED, size, v.h))) continue;
        return take(r, w0, v.h, size, fn, ctx, pid);
      case ST_CLAIMED:
      case ST_RELEASED:
      case ST_DEAD:
      case ST_PAD:
      case ST_FREED:
        cas(&s->head, v.h, add(r, v.h, size));
        continue;
      default:
        return SHM_RING_CORRUPT;
    }
  }
  return result;
}

struct copy_ctx {
  void* out;
  size_t cap;
  size_t* length;
};
static void copy_out(const unsigned char* payload, size_t length, void* ctx) {
  struct copy_ctx* c = (struct copy_ctx*)ctx;
  memcpy(c->out, payload, length < c->cap ? length : c->cap);
  *c->length = length;
}

enum shm_ring_status shm_ring_read(const struct shm_ring* r, void* out, size_t cap, size_t* length,
                                   uint32_t pid) {
  struct copy_ctx c = {out, cap, length};
  *length = 0;
  return shm_ring_read_with(r, copy_out, &c, pid);
}

void shm_ring_set_delay(const struct shm_ring* r, uint32_t ms) { st(&hdr(r)->delay_ms, ms); }
uint32_t shm_ring_delay(const struct shm_ring* r) {
  uint64_t ms = ld(&hdr(r)->delay_ms);
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;  /* scribbled: "not 0", so the device */
}

int shm_ring_retired(const struct shm_ring* r) { return (ld(&hdr(r)->tail) & SIZE_MASK) == RETIRED_LAST; }

enum shm_ring_status shm_ring_retire(const struct shm_ring* r) {
  struct seg_header* s = hdr(r);
  for (int i = 0; i < RETRIES; ++i) {
    uint64_t t = ld(&s->tail);
    if ((t & SIZE_MASK) == RETIRED_LAST) return SHM_RING_OK;
    struct view v;
    if (load_view(r, &v) != 0) return SHM_RING_CORRUPT;
    if (v.retired) return SHM_RING_OK;
    if (((v.t << SIZE_BITS) | v.last) != t) continue;  /* moved meanwhile */
    if (v.last != 0) {
      uint64_t p = sub(r, v.t, v.last);
      if (!tagged(ld(word(r, p)), p)) return SHM_RING_BUSY;  /* I2: wait for its word0 */
    }
    /* Same tail: no reservation since the check, so every record is tagged. */
    if (cas(&s->tail, t, (v.t << SIZE_BITS) | RETIRED_LAST)) return SHM_RING_OK;
  }
  return SHM_RING_BUSY;
}

int shm_ring_idle(const struct shm_ring* r) {
  struct seg_header* s = hdr(r);
  advance_free(r, 0);  /* readers free in batches: what they left released */
  uint64_t f = ld(&s->free), h = ld(&s->head), t = ld(&s->tail) >> SIZE_BITS;
  return f == h && h == t;
}

int shm_ring_writable(const struct shm_ring* r) {
  uint64_t t = ld(&hdr(r)->tail), pos = t >> SIZE_BITS, last = t & SIZE_MASK;
  if (last == 0 || last == RETIRED_LAST || pos >= r->modulus || last > r->cap_units) return 1;
  uint64_t p = sub(r, pos, last);
  return tagged(ld(word(r, p)), p);
}

int shm_ring_head_busy(const struct shm_ring* r) {
  struct seg_header* s = hdr(r);
  uint64_t h = ld(&s->head), t = ld(&s->tail) >> SIZE_BITS;
  if (h == t || h >= r->modulus) return 0;
  uint64_t w = ld(word(r, h));
  return !tagged(w, h) || state_of(w) == ST_RESERVED;
}

int shm_ring_nonempty(const struct shm_ring* r) {
  struct seg_header* s = hdr(r);
  return ld(&s->head) != (ld(&s->tail) >> SIZE_BITS);
}

void shm_ring_count(const struct shm_ring* r, uint64_t* messages, uint64_t* bytes) {
  *messages = 0;
  *bytes = 0;
  struct view v;
  if (load_view(r, &v) != 0) return;
  uint64_t p = v.h;
  for (uint64_t steps = 0; p != v.t && steps < r->cap_units; ++steps) {
    uint64_t* w0 = word(r, p);
    uint64_t w = ld(w0);
    uint64_t size = size_of(w);
    if (!tagged(w, p) || size == 0 || p % r->cap_units + size > r->cap_units) return;
    if (state_of(w) == ST_COMMITTED || state_of(w) == ST_RESERVED) {
      uint64_t len = ld(w0 + 1) & W1_LEN;
      if (len_fits(len, size)) {
        ++*messages;
        *bytes += len;
      }
    }
    p = add(r, p, size);
  }
}

/* --- the daemon's sweep ------------------------------------------------- */

/* Whether to give a stuck record up: after the live bound in any case;
 * after one stall bound if word1 names, in `role`, the process stuck in it
 * and that process is gone.  Without the role word1 names someone else (a
 * record's writer while its reader is between its claim and naming itself)
 * or nobody (a writer between its tail CAS and word1, a freer between two
 * steps): that process may be alive and only slow, and would write into the
 * record once it resumes, after the record was reused. */
static int gone(uint64_t w1, uint64_t role, uint64_t since, uint64_t now, uint64_t stall,
                int (*alive)(uint32_t, void*), void* ctx) {
  uint64_t waited = now - since;
  if (waited < stall) return 0;
  if (waited >= SHM_RING_LIVE_STALLS * stall) return 1;
  if ((w1 & role) == 0) return 0;
  uint32_t pid = (uint32_t)(w1 >> 32);  /* 0: a process that could not tell its pid */
  return pid != 0 && alive != NULL && !alive(pid, ctx);
}

/* Tracks (pos, word) across passes: returns when it was first seen. */
static uint64_t track(int* seen, uint64_t* pos, uint64_t* wd, uint64_t* since, uint64_t p, uint64_t w,
                      uint64_t now) {
  if (!*seen || *pos != p || *wd != w) {
    *seen = 1;
    *pos = p;
    *wd = w;
    *since = now;
  }
  return *since;
}

static void release_dead_charge(const struct shm_ring* r, const uint64_t* w0, uint64_t size) {
  if (w0 + 1 >= (const uint64_t*)(r->base + SHM_RING_HEADER_BYTES) + r->cap_units) return;
  uint64_t w1 = ld(w0 + 1);
  uint64_t len = w1 & W1_LEN;
  if ((w1 & W1_WRITER) && len_fits(len, size)) shm_ring_uncharge(r, len + OVERHEAD);
}

enum shm_ring_status shm_ring_sweep(const struct shm_ring* r, struct shm_ring_sweep_state* s,
                                    uint64_t now_ms, uint64_t stall_ms, uint64_t outside,
                                    int (*alive)(uint32_t pid, void* ctx), void* ctx,
                                    unsigned* repaired) {
  *repaired = 0;
  advance_free(r, 0);
  struct view v;
  if (load_view(r, &v) != 0) return SHM_RING_CORRUPT;
  struct seg_header* h = hdr(r);
  int head_stuck = 0, last_stuck = 0, free_stuck = 0;

  /* The newest reservation without its word0 (writer killed between the
   * tail CAS and the word0 CAS). */
  if (v.last != 0) {
    uint64_t p = sub(r, v.t, v.last);
    uint64_t* w0 = word(r, p);
    uint64_t w = ld(w0);
    if (!tagged(w, p)) {
      last_stuck = 1;
      uint64_t since = track(&s->last_seen, &s->last_pos, &s->last_word, &s->last_since, p, w, now_ms);
      uint64_t w1 = p % r->cap_units + 1 < r->cap_units ? ld(w0 + 1) : 0;
      if (p % r->cap_units + v.last > r->cap_units) return SHM_RING_CORRUPT;
      if (gone(w1, W1_WRITER, since, now_ms, stall_ms, alive, ctx) && cas(w0, w, mk(ST_DEAD, v.last, p))) {
        release_dead_charge(r, w0, v.last);
        ++*repaired;
      }
    }
  }

  /* A reservation at head never committed. */
  if (v.h != v.t) {
    uint64_t* w0 = word(r, v.h);
    uint64_t w = ld(w0);
    if (tagged(w, v.h)) {
      uint64_t size = size_of(w);
      if (size == 0 || v.h % r->cap_units + size > r->cap_units || size > dist(r, v.h, v.t))
        return SHM_RING_CORRUPT;
      if (state_of(w) == ST_RESERVED) {
        head_stuck = 1;
        uint64_t since = track(&s->head_seen, &s->head_pos, &s->head_word, &s->head_since, v.h, w, now_ms);
        if (gone(ld(w0 + 1), W1_WRITER, since, now_ms, stall_ms, alive, ctx) &&
            cas(w0, w, mk(ST_DEAD, size, v.h))) {
          release_dead_charge(r, w0, size);
          ++*repaired;
        }
      }
    } else if (v.h != sub(r, v.t, v.last)) {
      /* Untagged in the middle (I2): corrupt unless it is a moment's view. */
      head_stuck = 1;
      uint64_t since = track(&s->head_seen, &s->head_pos, &s->head_word, &s->head_since, v.h, w, now_ms);
      if (now_ms - since >= stall_ms) return SHM_RING_CORRUPT;
    }
  }

  /* A record at free that nobody finishes: a reader killed while copying
   * (CLAIMED), or a freer killed while zeroing (FREED). */
  if (v.f != v.h) {
    uint64_t* w0 = word(r, v.f);
    uint64_t w = ld(w0);
    uint64_t size = size_of(w);
    if (!tagged(w, v.f) || size == 0 || v.f % r->cap_units + size > r->cap_units ||
        size > dist(r, v.f, v.h))
      return SHM_RING_CORRUPT;
    unsigned state = state_of(w);
    if (state == ST_CLAIMED || state == ST_FREED) {
      free_stuck = 1;
      uint64_t since = track(&s->free_seen, &s->free_pos, &s->free_word, &s->free_since, v.f, w, now_ms);
      uint64_t w1 = size > 1 ? ld(w0 + 1) : 0;
      if (gone(w1, state == ST_CLAIMED ? W1_READER : W1_FREER, since, now_ms, stall_ms, alive, ctx)) {
        if (state == ST_CLAIMED) {
          if (cas(w0, w, mk(ST_RELEASED, size, v.f))) ++*repaired;
          advance_free(r, 0);
        } else {
          zero_body(w0, size, 0);
          if (cas(&h->free, v.f, add(r, v.f, size))) ++*repaired;
          advance_free(r, 0);
        }
      }
    } else if (state != ST_RELEASED && state != ST_DEAD && state != ST_PAD) {
      return SHM_RING_CORRUPT;
    }
  }

  /* An idle empty ring whose counter disagrees: a writer killed between
   * its charge and its reservation. */
  uint64_t stored = ld(&h->stored);
  if (v.h == v.t && v.f == v.h && stored != outside) {
    if (!s->empty_seen || s->empty_tail != v.t || s->empty_stored != stored) {
      s->empty_seen = 1;
      s->empty_tail = v.t;
      s->empty_stored = stored;
      s->empty_since = now_ms;
    } else if (now_ms - s->empty_since >= stall_ms && ld(&h->head) == v.t &&
               (ld(&h->tail) >> SIZE_BITS) == v.t && cas(&h->stored, stored, outside)) {
      ++*repaired;
      s->empty_seen = 0;
    }
  } else {
    s->empty_seen = 0;
  }
  if (!head_stuck) s->head_seen = 0;
  if (!last_stuck) s->last_seen = 0;
  if (!free_stuck) s->free_seen = 0;
  return SHM_RING_OK;
}

/* --- shm_ring_testing.h --------------------------------------------------- */
#include "ring/shm_ring_testing.h"

int shm_ring_test_write_until(const struct shm_ring* r, const void* data, size_t len, uint32_t pid,
                              enum shm_ring_stop stop) {
  struct seg_header* s = hdr(r);
  if (len == 0 || len > SHM_RING_MAX_PAYLOAD || !shm_ring_charge(r, len + OVERHEAD, UINT64_MAX)) return -1;
  if (stop == SHM_RING_STOP_RESERVE) return 0;
  uint64_t size = units_for(len);
  struct view v;
  if (load_view(r, &v) != 0) return -1;
  if (v.last != 0 && !tagged(ld(word(r, sub(r, v.t, v.last))), sub(r, v.t, v.last))) return -1;
  uint64_t off = v.t % r->cap_units;
  if (size > r->cap_units - off || dist(r, v.f, v.t) + size > r->cap_units) return -1;
  if (!cas(&s->tail, (v.t << SIZE_BITS) | v.last, (add(r, v.t, size) << SIZE_BITS) | size)) return -1;
  uint64_t* w0 = word(r, v.t);
  if (stop == SHM_RING_STOP_WORD1) return 0;
  st(w0 + 1, (uint64_t)len | W1_WRITER | ((uint64_t)pid << 32));
  if (stop == SHM_RING_STOP_WORD0) return 0;
  st(w0, mk(ST_RESERVED, size, v.t));
  memcpy(w0 + 2, data, len);
  return 0;
}

static int test_claim(const struct shm_ring* r, uint32_t pid, int named) {
  struct seg_header* s = hdr(r);
  struct view v;
  if (load_view(r, &v) != 0 || v.h == v.t) return -1;
  uint64_t* w0 = word(r, v.h);
  uint64_t w = ld(w0);
  if (!tagged(w, v.h) || state_of(w) != ST_COMMITTED) return -1;
  uint64_t size = size_of(w);
  if (!cas(w0, w, mk(ST_CLAIMED, size, v.h))) return -1;
  uint64_t len = ld(w0 + 1) & W1_LEN;
  if (named) st(w0 + 1, len | W1_READER | ((uint64_t)pid << 32));
  cas(&s->head, v.h, add(r, v.h, size));
  shm_ring_uncharge(r, len + OVERHEAD);
  return 0;
}

int shm_ring_test_claim(const struct shm_ring* r, uint32_t pid) { return test_claim(r, pid, 1); }
int shm_ring_test_claim_unnamed(const struct shm_ring* r) { return test_claim(r, 0, 0); }

int shm_ring_test_free_until(const struct shm_ring* r, uint32_t pid, int named) {
  struct view v;
  if (load_view(r, &v) != 0 || v.f == v.h) return -1;
  uint64_t* w0 = word(r, v.f);
  uint64_t w = ld(w0);
  uint64_t size = size_of(w);
  if (!tagged(w, v.f) || size < 2 || (state_of(w) != ST_CLAIMED && state_of(w) != ST_RELEASED)) return -1;
  if (!cas(w0, w, mk(ST_FREED, size, v.f))) return -1;
  if (named) st(w0 + 1, W1_FREER | ((uint64_t)pid << 32));
  return 0;
}

void shm_ring_test_set_fast_counts(const struct shm_ring* r, uint64_t sent, uint64_t received) {
  __atomic_store_n(&hdr(r)->fast_sent, sent, __ATOMIC_RELAXED);
  __atomic_store_n(&hdr(r)->fast_received, received, __ATOMIC_RELAXED);
}
