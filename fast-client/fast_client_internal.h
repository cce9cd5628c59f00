/*
 * fast_client_internal.h - what libsynchmess-fast.so's own unit test needs
 * beyond the preloaded functions (not exported from the library).
 *
 * Contract: synchmess_fast_adopt(fd, memfd, group) maps memfd (a sealed
 * segment formatted by shm_ring_format, as the daemon hands it out) exactly
 * as the library maps a segment received at the daemon's socket (same seal
 * and size checks, same sharing of one mapping per group, keyed by the
 * memfd's inode) and makes fd use it, with fd's access mode.  Returns 0, or
 * -1 with errno (EINVAL: not a ring, or fd out of the table's range).  It
 * does not close memfd.  synchmess_fast_state(fd) tells what the library
 * knows about fd: 0 nothing yet, 1 not a synchmess device, 2 a synchmess
 * device used through the device, 3 a group on its shared ring.
 * synchmess_fast_note_daemon_pid(seen) is what the library does with the
 * pid a hand-out reply says the daemon sees: when it is not 0 and differs
 * from getpid() (another pid namespace), the process and its later forks
 * name pid 0 (nobody) in their ring records; when it equals getpid(), the
 * process's pid namespace is noted as the daemon's, and a fork child in
 * another one (after unshare(CLONE_NEWPID)) names pid 0 too.
 *
 * Thread safety: as the library's (any thread, any time).
 */
#ifndef SYNCHMESS_FAST_CLIENT_INTERNAL_H
#define SYNCHMESS_FAST_CLIENT_INTERNAL_H

#include <stdint.h>

int synchmess_fast_adopt(int fd, int memfd, uint32_t group);
int synchmess_fast_state(int fd);
void synchmess_fast_note_daemon_pid(uint32_t seen);

#endif
