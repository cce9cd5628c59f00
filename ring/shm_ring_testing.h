/* shm_ring_testing.h - steps of shm_ring.c's protocol, run alone, so tests
 * can leave a ring exactly as a process killed between two steps would.
 *
 * Contract: shm_ring_test_write_until(r, data, len, pid, stop) runs a write
 * of len bytes (no limit but the ring's room) and stops before step `stop`:
 *   SHM_RING_STOP_RESERVE  charged only (killed before the tail CAS)
 *   SHM_RING_STOP_WORD1    tail moved, nothing stored (word1 still 0)
 *   SHM_RING_STOP_WORD0    tail moved, word1 stored, no word0
 *   SHM_RING_STOP_COMMIT   RESERVED and copied, never committed
 * shm_ring_test_claim(r, pid) claims the oldest message and never releases
 * it (a reader killed while copying); shm_ring_test_claim_unnamed(r) the
 * same, stopped before it names itself in word1 (word1 still names the
 * writer).  shm_ring_test_free_until(r, pid, named) takes the claimed or
 * released record at `free` to FREED and stops there, before zeroing it,
 * with word1 naming the freer `pid` (named) or not yet.  All return 0 or
 * -1 (not possible now).  shm_ring_test_set_fast_counts(r, sent, received)
 * writes the statistics hints as a hostile client could.  Not for
 * production use; thread safety as shm_ring.h.
 */
#ifndef SYNCHMESS_SHM_RING_TESTING_H
#define SYNCHMESS_SHM_RING_TESTING_H

#include "ring/shm_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

enum shm_ring_stop { SHM_RING_STOP_RESERVE, SHM_RING_STOP_WORD1, SHM_RING_STOP_WORD0, SHM_RING_STOP_COMMIT };
int shm_ring_test_write_until(const struct shm_ring* r, const void* data, size_t len, uint32_t pid,
                              enum shm_ring_stop stop);
int shm_ring_test_claim(const struct shm_ring* r, uint32_t pid);
int shm_ring_test_claim_unnamed(const struct shm_ring* r);
int shm_ring_test_free_until(const struct shm_ring* r, uint32_t pid, int named);
void shm_ring_test_set_fast_counts(const struct shm_ring* r, uint64_t sent, uint64_t received);

#ifdef __cplusplus
}
#endif

#endif
