/*
 * synchmess_interface.h - the SynchMess device ABI.
 *
 * Contract: bit-for-bit the header of the original SynchMess kernel module
 * (ioctl magic 0xD3, numbers 1..5 with pointer-sized size fields,
 * struct group_t of 260 bytes), so clients built against the original run
 * unmodified.  Numbers 6 and up are synchmess extensions.  Plain C; the
 * only include is <linux/ioctl.h>.
 */
#ifndef SYNCHMESS_INTERFACE_H
#define SYNCHMESS_INTERFACE_H

#include <linux/ioctl.h>

#define MAX_NUM_GROUPS 64

/* CRC-64("SynchMess"); the magic is HASH % 255 == 211 == 0xD3.  Both names
 * are the original's (clients may use them). */
#define HASH 0x7B8C14A8DCB78AEF
#define SYNCHMESS_IOC_MAGIC (HASH % 255)

struct group_t {
	unsigned descriptor;
	char device_path[256];
};

/* The original module: the size field of 1 and 4 is sizeof(pointer). */
#define IOCTL_INSTALL_GROUP _IOWR(SYNCHMESS_IOC_MAGIC, 1, struct group_t *)
#define IOCTL_SLEEP _IO(SYNCHMESS_IOC_MAGIC, 2)
#define IOCTL_AWAKE _IO(SYNCHMESS_IOC_MAGIC, 3)
#define IOCTL_SET_SEND_DELAY _IOW(SYNCHMESS_IOC_MAGIC, 4, unsigned *)
#define IOCTL_REVOKE_DELAYED_MESSAGES _IO(SYNCHMESS_IOC_MAGIC, 5)

/*
 * Extensions (synchmess only).
 *
 * IOCTL_FLUSH_DELAYED_MESSAGES, on a group device: the effect of fsync() on
 * the module (every pending delayed message is published now, in order).
 * CUSE devices cannot receive fsync(); this number can.
 */
#define IOCTL_FLUSH_DELAYED_MESSAGES _IO(SYNCHMESS_IOC_MAGIC, 6)

/*
 * Run-time parameters, on the master device (root only; EPERM otherwise).
 * GET fills the struct; SET changes the non-zero fields (0 = keep).
 * Shrinking a limit never drops stored messages: it only refuses new ones.
 */
struct synchmess_params {
	unsigned long long max_message_size;
	unsigned long long max_storage_size;
};
#define IOCTL_GET_PARAMS _IOR(SYNCHMESS_IOC_MAGIC, 7, struct synchmess_params)
#define IOCTL_SET_PARAMS _IOW(SYNCHMESS_IOC_MAGIC, 8, struct synchmess_params)

/*
 * Storage accounting: a stored message (readable or delayed) counts its
 * length plus SYNCHMESS_MESSAGE_OVERHEAD bytes against max_storage_size,
 * so that the daemon's memory stays bounded by the storage limits whatever
 * the message sizes (the module counted the length only).
 */
#define SYNCHMESS_MESSAGE_OVERHEAD 64

#endif /* SYNCHMESS_INTERFACE_H */
