/* shm_ring.h - one group's readable messages in a shared-memory byte ring.
 *
 * The daemon and the fast-path clients (libsynchmess-fast.so) map the same
 * segment and run these functions on it; the daemon's device reads and
 * writes use the same ring, so FIFO and exactly-once hold whichever path
 * each side takes.  Plain C11 with GCC's __atomic builtins, so the preload
 * library needs no C++ runtime; the layout is docs/abi.md "Fast path".
 *
 * Layout: a 4096-byte header (magic, version, capacity, the positions, the
 * writers' hint of free (version 3), the storage counter, the limits, the send delay, the pollers flag, the
 * clients' statistics hints), then `capacity` data bytes.
 * Positions count 8-byte units modulo a multiple of the capacity (so they
 * never need a wrap special case).  A record at position p is a 16-byte
 * header (word0: state | size in units | tag = p; word1: length | role |
 * pid, the role saying whether pid is the record's writer, reader or
 * freer: the process that holds the record now) and
 * its payload; a record never wraps: a writer that would cross the end of
 * the data area first reserves a PAD record up to it.
 *
 * The lock-free protocol (every step one CAS or one store; no lock a killed
 * process could hold):
 *  1. Writer: charge len+SYNCHMESS_MESSAGE_OVERHEAD to `stored` (CAS, refuse
 *     above the limit: the same byte as the devices); CAS `tail` from (T,
 *     last) to (T+size, size) (room judged from the writers' hint of
 *     free while it shows room, else from free itself); store word1; CAS
 *     word0 to RESERVED; copy; CAS RESERVED -> COMMITTED (the linearization point of the write).  Only the
 *     newest reservation (tail's `last`) can lack its word0; writers wait
 *     (boundedly) until it is set, so every record's size is known.
 *  2. Reader: at `head`, CAS COMMITTED -> CLAIMED (the linearization point
 *     of the read; the charge is released here), advance `head` (anyone
 *     helps), copy, CAS RELEASED, then, once a batch of released space lies
 *     before head (or when a writer lacks room, at each sweep and in
 *     shm_ring_idle), advance `free` over released, dead and pad records,
 *     zeroing each (so reserved space always reads as a record of an older
 *     lap or 0, never as a future record).
 *  3. Exactly one thread frees a record: the one whose CAS sets FREED.
 *  4. The daemon (shm_ring_sweep, every ~100 ms) repairs what killed or
 *     stopped processes leave: a reservation never published becomes DEAD
 *     (skipped; its charge released) after `stall_ms` if word1 names its
 *     writer and that pid is gone, after SHM_RING_LIVE_STALLS x stall_ms in
 *     any case; a claimed record never released becomes RELEASED likewise
 *     (word1 naming its reader); a half-freed record is freed likewise
 *     (word1 naming its freer); a storage counter that disagrees with an
 *     idle empty ring is reset.  Each process names itself in word1 right
 *     after the CAS that made the record its own: in the instruction or two
 *     between, word1 names someone else or nobody, so the sweep waits the
 *     live bound (a slow process there would otherwise write into a record
 *     that was given up and reused: a garbled or lost message).
 *  5. Retirement (growth): the daemon marks the tail retired (its size
 *     field becomes all ones, a size no record has) once the newest
 *     reservation has its word0.  A writer's tail CAS then fails, so every
 *     record in the ring was reserved before the retirement: readers drain
 *     it (FIFO), then get RETIRED and go on with the group's next segment.
 *  6. Untrusted memory: every value read from the segment is checked before
 *     it is used as an offset or a length (the capacity comes from the
 *     caller's own copy, never from the segment after attach).  Inconsistent
 *     values make the operation return SHM_RING_CORRUPT and never read or
 *     write outside the segment; the daemon then re-formats the ring (that
 *     group's messages are lost, nothing else).
 *
 * Thread safety: every function may run in any number of threads and
 * processes at once on the same segment, except shm_ring_format (the
 * daemon's, while it alone knows the segment, or to repair a corrupt one:
 * concurrent clients may then lose or garble that group's messages only).
 */
#ifndef SYNCHMESS_SHM_RING_H
#define SYNCHMESS_SHM_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHM_RING_MAGIC 0x53594e434846524bull /* "SYNCHFRK" */
#define SHM_RING_VERSION 3u
#define SHM_RING_HEADER_BYTES 4096u
#define SHM_RING_RECORD_HEADER 16u
/* Largest record: 16 + 65536 rounded (the largest max_message_size). */
#define SHM_RING_MAX_PAYLOAD 65536u
/* A stuck record of a process that still exists is given up after this many
 * stall bounds: that process may only be slow (preempted, its vCPU stolen),
 * and giving up its record while it still copies garbles a message, so the
 * bound is long (the daemon's: 80 x 65 ms = 5.2 s); one of a dead process
 * after one stall bound. */
#define SHM_RING_LIVE_STALLS 80u

enum shm_ring_status {
  SHM_RING_OK = 0,
  SHM_RING_EMPTY,    /* nothing readable */
  SHM_RING_FULL,     /* over the storage limit, or no room in the ring */
  SHM_RING_TOO_BIG,  /* longer than max_message_size */
  SHM_RING_BUSY,     /* a writer is between two steps: try again or use the device */
  SHM_RING_CORRUPT,  /* the segment is inconsistent */
  SHM_RING_RETIRED,  /* the daemon retired this segment (write: always; read:
                        once drained): map the group's new one or use the device */
};

/* A mapped segment, as the caller knows it.  Fill with shm_ring_attach (or
 * shm_ring_format); `capacity` is then trusted, the memory is not. */
struct shm_ring {
  unsigned char* base;   /* the mapping: header then data */
  uint64_t capacity;     /* data bytes, a multiple of 8 */
  uint64_t cap_units;    /* capacity / 8 */
  uint64_t modulus;      /* positions are taken modulo this (units) */
};

/* Segment bytes (header + data) for a group whose storage limit is
 * max_storage: the limit, plus room for a wrap pad and in-flight copies
 * (4 x the largest record), rounded up to a page. */
uint64_t shm_ring_segment_bytes(uint64_t max_storage);

/* Lays out an empty ring in `mem` (segment_bytes long, any content) and
 * fills `r`.  The limits are stored for the clients.  data_is_zero: the
 * data area is known to be zero (a fresh mapping): it is not written, so
 * its pages are allocated only as the ring turns.  Returns 0, or -1 if
 * segment_bytes is too small or too large. */
int shm_ring_format(struct shm_ring* r, void* mem, uint64_t segment_bytes, uint64_t max_message,
                    uint64_t max_storage, uint64_t generation, int data_is_zero);

/* Validates the header of a mapping of `mapped_bytes` and fills `r`.
 * Returns 0, or -1 if it is not a ring of this version that fits. */
int shm_ring_attach(struct shm_ring* r, void* mem, uint64_t mapped_bytes);

/* Writes one message.  max_message/max_storage: the limits to apply (the
 * daemon passes its own; clients pass shm_ring_limits').  pid: the writer's,
 * recorded for the sweep.  OK, TOO_BIG, FULL (nothing charged), BUSY,
 * CORRUPT.  An empty message is OK and writes nothing. */
enum shm_ring_status shm_ring_write(const struct shm_ring* r, const void* data, size_t len,
                                    uint64_t max_message, uint64_t max_storage, uint32_t pid);

/* Reads the oldest message: copies min(len, cap) bytes into out and sets
 * *length to the message's length.  OK, EMPTY, BUSY, CORRUPT. */
enum shm_ring_status shm_ring_read(const struct shm_ring* r, void* out, size_t cap, size_t* length,
                                   uint32_t pid);

/* The same, handing the payload (in the segment: the bytes may change under
 * the callee if a hostile client writes them, never its bounds) to fn. */
typedef void (*shm_ring_consumer)(const unsigned char* payload, size_t length, void* ctx);
enum shm_ring_status shm_ring_read_with(const struct shm_ring* r, shm_ring_consumer fn, void* ctx,
                                        uint32_t pid);

/* Storage counter, shared by both paths (the daemon also charges delayed
 * messages to it).  charge fails (returns 0) above the limit. */
int shm_ring_charge(const struct shm_ring* r, uint64_t bytes, uint64_t max_storage);
void shm_ring_uncharge(const struct shm_ring* r, uint64_t bytes);
uint64_t shm_ring_stored(const struct shm_ring* r);
/* A message the caller already charged (a delayed message the daemon
 * publishes): like shm_ring_write without touching the counter; on failure
 * the charge stays the caller's. */
enum shm_ring_status shm_ring_write_charged(const struct shm_ring* r, const void* data, size_t len,
                                            uint32_t pid);

/* The limits the daemon published (untrusted; the daemon applies its own). */
void shm_ring_set_limits(const struct shm_ring* r, uint64_t max_message, uint64_t max_storage);
void shm_ring_limits(const struct shm_ring* r, uint64_t* max_message, uint64_t* max_storage);

/* The group's send delay in ms, published by the daemon (untrusted).  A
 * client writes through the ring only while it reads 0. */
void shm_ring_set_delay(const struct shm_ring* r, uint32_t ms);
uint32_t shm_ring_delay(const struct shm_ring* r);

/* The daemon's: retires the ring (point 5 above).  OK (now or before),
 * BUSY (the newest reservation lacks its word0: a writer is between two
 * steps, or was killed there and the sweep has not declared it dead yet;
 * try again later), CORRUPT.  After OK, shm_ring_write and
 * shm_ring_write_charged return RETIRED (nothing charged, nothing
 * written), shm_ring_read returns RETIRED instead of EMPTY. */
enum shm_ring_status shm_ring_retire(const struct shm_ring* r);
int shm_ring_retired(const struct shm_ring* r);

/* Idle: every record was read and freed (free == head == tail), so no
 * reader is still copying out of the data area (a hint: seq_cst loads).
 * Frees what readers released first (they free in batches). */
int shm_ring_idle(const struct shm_ring* r);

/* Writable hint: the newest reservation has its word0, so a write would
 * not wait for it (BUSY); a few loads, no retries (the daemon asks before it
 * retries a parked device write on its service loop). */
int shm_ring_writable(const struct shm_ring* r);
/* Head-busy hint: the oldest record is a reservation being copied in (or
 * lacking its word0), so a read would wait for it (the daemon asks before
 * it reads, so as not to run the read's retries on a stuck head). */
int shm_ring_head_busy(const struct shm_ring* r);

/* Readable hint: a committed or reserved record exists (seq_cst). */
int shm_ring_nonempty(const struct shm_ring* r);
/* Messages and payload bytes between head and tail (a hint; 0 on corruption). */
void shm_ring_count(const struct shm_ring* r, uint64_t* messages, uint64_t* bytes);

/* Pollers: the daemon sets the flag (seq_cst) before it re-checks
 * nonempty; a fast writer reads it (seq_cst) after it committed and, if
 * set, tells the daemon (a group ioctl) so it notifies the pollers. */
void shm_ring_set_pollers(const struct shm_ring* r, int waiting);
int shm_ring_pollers(const struct shm_ring* r);

/* Statistics hints: the fast-path clients count the writes and reads they
 * did on this ring (note_*: a relaxed atomic add, each counter on a cache
 * line of its own, away from the positions); the daemon adds them to the
 * group's statistics.  Any client of the group can write anything there:
 * the daemon clamps them and never uses them for anything else.
 * shm_ring_format zeroes them. */
void shm_ring_note_sent(const struct shm_ring* r);
void shm_ring_note_received(const struct shm_ring* r);
void shm_ring_fast_counts(const struct shm_ring* r, uint64_t* sent, uint64_t* received);

/* The daemon's repair pass.  The state it keeps between passes (private,
 * never in the segment) is `struct shm_ring_sweep_state`, zeroed at first.
 * now_ms: a monotonic clock; alive(pid, ctx): whether a process exists
 * (NULL: treat every pid as alive).  Returns SHM_RING_OK, or CORRUPT when
 * the ring must be re-formatted.  *repaired counts the records repaired. */
struct shm_ring_sweep_state {
  uint64_t head_pos, head_word, head_since;  /* a record stuck at head */
  uint64_t last_pos, last_word, last_since;  /* the newest reservation stuck */
  uint64_t free_pos, free_word, free_since;  /* a record stuck at free */
  uint64_t empty_tail, empty_stored, empty_since; /* idle empty ring */
  int head_seen, last_seen, free_seen, empty_seen;
};
/* outside: what the counter holds for messages not in the ring (the
 * daemon's delayed messages); an idle empty ring's counter is reset to it. */
enum shm_ring_status shm_ring_sweep(const struct shm_ring* r, struct shm_ring_sweep_state* s,
                                    uint64_t now_ms, uint64_t stall_ms, uint64_t outside,
                                    int (*alive)(uint32_t pid, void* ctx), void* ctx,
                                    unsigned* repaired);

#ifdef __cplusplus
}
#endif

#endif
