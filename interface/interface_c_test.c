/* Compiles the ABI header as plain C and checks it against the original
 * module's values (docs/abi.md).  A mismatch fails the build. */
#include "synchmess_interface.h"
#include "synchmess_stats.h"
#include "synchmess_fast.h"

#include <stddef.h>
#include <stdio.h>

_Static_assert(MAX_NUM_GROUPS == 64, "MAX_NUM_GROUPS");
_Static_assert(SYNCHMESS_IOC_MAGIC == 211, "magic is 0xD3");
_Static_assert(IOCTL_INSTALL_GROUP == 0xC008D301, "INSTALL_GROUP");
_Static_assert(IOCTL_SLEEP == 0x0000D302, "SLEEP");
_Static_assert(IOCTL_AWAKE == 0x0000D303, "AWAKE");
_Static_assert(IOCTL_SET_SEND_DELAY == 0x4008D304, "SET_SEND_DELAY");
_Static_assert(IOCTL_REVOKE_DELAYED_MESSAGES == 0x0000D305, "REVOKE");
_Static_assert(IOCTL_FLUSH_DELAYED_MESSAGES == 0x0000D306, "FLUSH (extension)");
_Static_assert(_IOC_SIZE(IOCTL_INSTALL_GROUP) == sizeof(void *), "pointer-sized");
_Static_assert(_IOC_SIZE(IOCTL_SET_SEND_DELAY) == sizeof(void *), "pointer-sized");
_Static_assert(sizeof(struct group_t) == 260, "group_t is 260 bytes");
_Static_assert(offsetof(struct group_t, descriptor) == 0, "descriptor first");
_Static_assert(offsetof(struct group_t, device_path) == 4, "path at 4");
_Static_assert(sizeof(((struct group_t *)0)->device_path) == 256, "path 256");
_Static_assert(sizeof(struct synchmess_params) == 16, "params 16 bytes");
_Static_assert(IOCTL_GET_PARAMS == 0x8010D307, "GET_PARAMS (extension)");
_Static_assert(IOCTL_SET_PARAMS == 0x4010D308, "SET_PARAMS (extension)");
/* synchmess_stats.h: fixed sizes within the number's 14-bit size field,
 * 8-byte fields at multiples of 8 (the same layout on 32-bit callers). */
_Static_assert(sizeof(struct synchmess_stats) == 64, "stats 64 bytes");
_Static_assert(offsetof(struct synchmess_stats, uptime_ms) == 8, "uptime at 8");
_Static_assert(offsetof(struct synchmess_stats, max_groups) == 32, "max_groups at 32");
_Static_assert(offsetof(struct synchmess_stats, groups) == 36, "groups at 36");
_Static_assert(IOCTL_GET_STATS == 0x8040D309, "GET_STATS (extension)");
_Static_assert(sizeof(struct synchmess_group_stats) == 128, "group stats 128 bytes");
_Static_assert(offsetof(struct synchmess_group_stats, flags) == 4, "flags at 4");
_Static_assert(offsetof(struct synchmess_group_stats, queued_messages) == 24, "queued at 24");
_Static_assert(offsetof(struct synchmess_group_stats, flushed) == 88, "flushed at 88");
_Static_assert(offsetof(struct synchmess_group_stats, reserved) == 96, "reserved at 96");
_Static_assert(IOCTL_GET_GROUP_STATS == 0xC080D30A, "GET_GROUP_STATS (extension)");
/* synchmess_fast.h */
_Static_assert(sizeof(struct synchmess_fast_ticket) == 128, "ticket 128 bytes");
_Static_assert(offsetof(struct synchmess_fast_ticket, group) == 24, "group at 24");
_Static_assert(offsetof(struct synchmess_fast_ticket, socket_path) == 32, "path at 32");
_Static_assert(sizeof(struct synchmess_fast_request) == 16, "request 16 bytes");
_Static_assert(sizeof(struct synchmess_fast_reply) == 24, "reply 24 bytes");
_Static_assert(SYNCHMESS_IOCTL_FAST_TICKET == 0x8080D310, "FAST_TICKET (extension)");
_Static_assert(SYNCHMESS_IOCTL_FAST_KICK == 0x0000D311, "FAST_KICK (extension)");

int main(void)
{
	/* The same checks at run time, so the test has a visible verdict. */
	int bad = 0;
	bad |= IOCTL_INSTALL_GROUP != 0xC008D301;
	bad |= sizeof(struct group_t) != 260;
	bad |= sizeof(struct synchmess_group_stats) != 128;
	bad |= sizeof(struct synchmess_fast_ticket) != 128;
	printf("interface: %s\n", bad ? "MISMATCH" : "ok");
	return bad;
}
