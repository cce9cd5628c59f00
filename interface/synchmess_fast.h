/*
 * synchmess_fast.h - the shared-memory fast path's hand-out (extension).
 *
 * Contract (docs/abi.md "Fast path"): SYNCHMESS_IOCTL_FAST_TICKET on a
 * group device returns a one-time ticket for the caller's uid, valid 10 s;
 * the client connect()s to socket_path (AF_UNIX SOCK_SEQPACKET), sends one
 * struct synchmess_fast_request and receives one struct
 * synchmess_fast_reply, with the group's sealed memfd as SCM_RIGHTS when
 * error == 0 (error: a positive errno otherwise).  It maps segment_bytes
 * MAP_SHARED and attaches the ring (shm_ring.h).  SYNCHMESS_IOCTL_FAST_KICK
 * on the group device wakes that group's device pollers.  Both are
 * group-device ioctls: ENOTTY on the master, and ENOTTY for
 * FAST_TICKET when the daemon runs with --no-fast.  The sizes are fixed
 * (128, 16, 24 bytes) and within FUSE's restricted ioctl.  Plain C.
 */
#ifndef SYNCHMESS_FAST_H
#define SYNCHMESS_FAST_H

#include <linux/types.h>

#include "synchmess_interface.h"

#define SYNCHMESS_FAST_VERSION 1

struct synchmess_fast_ticket {         /* exactly 128 bytes */
	__u64 token;          /* one-time, for the caller's uid, valid 10 s */
	__u64 segment_bytes;  /* size of the memfd to map */
	__u64 generation;     /* of the group's current segment */
	__u32 group;          /* the group's descriptor */
	__u32 version;        /* SYNCHMESS_FAST_VERSION */
	char socket_path[96]; /* NUL-terminated AF_UNIX SOCK_SEQPACKET path */
};
#define SYNCHMESS_IOCTL_FAST_TICKET _IOR(0xD3, 16, struct synchmess_fast_ticket)
#define SYNCHMESS_IOCTL_FAST_KICK   _IO(0xD3, 17)   /* wake the group's device pollers */

struct synchmess_fast_request { __u64 token; __u32 group; __u32 reserved; };   /* 16 bytes */
/* pid: the client's pid as the daemon sees it (SO_PEERCRED), or
 * SYNCHMESS_FAST_PID_UNSEEN when the client is outside the daemon's pid
 * namespace; 0 from daemons older than this field.  A client whose own
 * getpid() differs names no pid in the ring (its pid would mean another
 * process to the daemon). */
struct synchmess_fast_reply   { __s32 error; __u32 pid; __u64 segment_bytes; __u64 generation; }; /* 24 */
#define SYNCHMESS_FAST_PID_UNSEEN 0xFFFFFFFFu

#endif
