/*
 * synchmess_stats.h - statistics of a running synchmess service (extension).
 *
 * Contract: two ioctls on the master device (any user; a read-only open is
 * enough), numbers 9 and 10 with the SynchMess magic, the same on CUSE and
 * FUSE.  Each moves a fixed-size struct whose size is the number's size
 * field, so it works within FUSE's restricted ioctl (the kernel copies
 * exactly _IOC_SIZE bytes) as well as CUSE's.  Every field is a snapshot:
 * exact when nothing runs concurrently, otherwise each value was true at
 * some instant during the call (fields of one struct may come from
 * different instants).  Reading them takes no lock on the daemon's
 * read/write path.  Errors (docs/abi.md, synchmess(4)): EFAULT, the struct
 * is not accessible (the kernel's answer); for IOCTL_GET_GROUP_STATS also
 * EBADF (descriptor outside 1..max_groups), ENODEV (not installed; with
 * SYNCHMESS_GROUP_STATS_NEXT: no installed group at or above it), EINVAL
 * (unknown flags).  Plain C; includes only synchmess_interface.h.
 */
#ifndef SYNCHMESS_STATS_H
#define SYNCHMESS_STATS_H

#include "synchmess_interface.h"

/* The layout below; a later version only appends or uses reserved fields. */
#define SYNCHMESS_STATS_VERSION 1

#define SYNCHMESS_TRANSPORT_CUSE 1
#define SYNCHMESS_TRANSPORT_FUSE 2

/* The daemon as a whole: 64 bytes, alignment 8. */
struct synchmess_stats {
	unsigned int version;                /* out: SYNCHMESS_STATS_VERSION */
	unsigned int transport;              /* out: SYNCHMESS_TRANSPORT_* */
	unsigned long long uptime_ms;        /* out: since the daemon started serving */
	unsigned long long max_message_size; /* out: as IOCTL_GET_PARAMS */
	unsigned long long max_storage_size; /* out: as IOCTL_GET_PARAMS */
	unsigned int max_groups;             /* out: descriptors are 1..max_groups */
	unsigned int groups;                 /* out: groups installed */
	unsigned long long reserved[3];      /* out: 0 */
};
#define IOCTL_GET_STATS _IOR(SYNCHMESS_IOC_MAGIC, 9, struct synchmess_stats)

/* In flags: report the installed group with the lowest descriptor that is
 * >= descriptor (0 counts as 1), so a client can walk every group:
 * start at 1, then ask for the reported descriptor + 1 until ENODEV. */
#define SYNCHMESS_GROUP_STATS_NEXT 1u

/* One group: 128 bytes, alignment 8.  Counts are messages unless they say
 * bytes; bytes are message lengths (storage_bytes adds the per-message
 * SYNCHMESS_MESSAGE_OVERHEAD, as the storage limit counts them). */
struct synchmess_group_stats {
	unsigned int descriptor;             /* in: the group; out: the group reported */
	unsigned int flags;                  /* in: 0 or SYNCHMESS_GROUP_STATS_NEXT; out: as given */
	unsigned int version;                /* out: SYNCHMESS_STATS_VERSION */
	unsigned int send_delay_ms;          /* out: IOCTL_SET_SEND_DELAY's value */
	unsigned int sleepers;               /* out: threads blocked in IOCTL_SLEEP */
	unsigned int open_files;             /* out: open file descriptions of the device */
	unsigned long long queued_messages;  /* out: readable now */
	unsigned long long queued_bytes;
	unsigned long long delayed_messages; /* out: waiting for their send delay */
	unsigned long long delayed_bytes;
	unsigned long long storage_bytes;    /* out: charged against max_storage_size */
	unsigned long long sent;             /* out: totals since install: writes queued or delayed */
	unsigned long long received;         /*      reads that returned a message */
	unsigned long long revoked;          /*      delayed messages revoked */
	unsigned long long flushed;          /*      delayed messages published by a flush */
	unsigned long long reserved[4];      /* out: 0 */
};
#define IOCTL_GET_GROUP_STATS _IOWR(SYNCHMESS_IOC_MAGIC, 10, struct synchmess_group_stats)

#endif /* SYNCHMESS_STATS_H */
