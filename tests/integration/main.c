/*
 * main.c - synchmess-integration: the ABI behaviour table of abi.md,
 * checked against a live daemon through either transport.
 *
 *   synchmess-integration [--dev-dir DIR] [--transport cuse|fuse]
 *                         [--filter SUBSTR] [--stress-messages N] [--list]
 *                         [--peer-dev-dir DIR2]
 *
 * DIR (default /dev/synch) holds the master "synchmess".  Without
 * --transport, a character-device master means cuse, anything else fuse.
 * Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per test
 * and one final "N passed, N failed" line; exits 0 only if nothing failed.
 * Expects the daemon's default parameters (1024 / 1048576).
 * DIR2: a second daemon of the same cluster (synchmessd --cluster): the
 * tests' other clients (readers, pollers, half the sleepers) use it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "tests.h"

#define T(name, fn, groups, timeout) { name, fn, groups, timeout }

static const struct sm_test all_tests[] = {
	T("master_open_wronly_eperm", test_master_open_wronly, 0, 10),
	T("master_open_rdwr_eperm", test_master_open_rdwr, 0, 10),
	T("master_read_eperm", test_master_read, 0, 10),
	T("master_fsync_eperm", test_master_fsync, 0, 10),
	T("master_ioctl_eperm", test_master_ioctl_eperm, 0, 10),
	T("master_install_efault", test_master_install_efault, 1, 10),
	T("master_install_ebadf", test_master_install_ebadf, 0, 10),
	T("master_install_new_and_existing", test_master_install, 1, 15),
	T("master_install_existing_keeps_state", test_master_install_keeps_state, 1, 15),
	T("master_install_concurrent", test_master_install_concurrent, 4, 20),

	T("group_write_too_big_eperm", test_group_write_too_big, 1, 15),
	T("group_write_max_size", test_group_write_max, 1, 15),
	T("group_storage_limit", test_group_storage_limit, 1, 60),
	T("group_read_empty_returns_0", test_group_read_empty, 1, 15),
	T("group_fifo", test_group_fifo, 1, 30),
	T("group_short_read_consumes_message", test_group_short_read, 1, 15),
	T("group_message_never_split", test_group_no_split, 1, 15),
	T("group_queues_independent", test_group_isolation, 2, 15),
	T("group_unknown_ioctl_eperm", test_group_unknown_ioctl, 1, 15),

	T("delay_write_returns_at_once", test_delay_write, 1, 30),
	T("delay_matures_in_order", test_delay_order, 1, 30),
	T("delay_set_while_pending_eperm", test_delay_set_pending, 1, 20),
	T("delay_revoke_destroys_pending", test_delay_revoke, 1, 45),
	T("delay_flush_ioctl_publishes", test_delay_flush_ioctl, 1, 20),
	T("delay_fsync", test_delay_fsync, 1, 20),
	T("delay_storage_reserved_at_write", test_delay_storage_reserved, 1, 20),
	T("delay_back_to_zero_is_immediate", test_delay_back_to_zero, 1, 20),
	T("delay_close_does_not_flush", test_delay_close_no_flush, 1, 20),
	T("delay_set_bad_pointer_efault", test_delay_bad_pointer, 1, 15),
	T("delay_uint_max_does_not_overflow", test_delay_huge, 2, 30),
	T("delay_per_group", test_delay_per_group, 2, 20),

	T("barrier_awake_counts_sleepers", test_barrier_awake_counts, 1, 45),
	T("barrier_awake_none_returns_0", test_barrier_awake_none, 1, 15),
	T("barrier_groups_independent", test_barrier_groups_independent, 2, 45),
	T("barrier_signal_eintr", test_barrier_signal_eintr, 1, 45),
	T("barrier_sigkill_sleeper", test_barrier_sigkill, 1, 45),
	T("barrier_many_sleepers_do_not_block", test_barrier_many_sleepers, 2, 60),
	T("barrier_signal_awake_race", test_barrier_signal_awake_race, 1, 60),

	T("poll_empty_then_write", test_poll_empty_then_write, 1, 15),
	T("poll_wakes_on_write", test_poll_wakes_on_write, 1, 40),
	T("poll_wakes_on_delayed_message", test_poll_wakes_on_delayed, 1, 40),
	T("poll_wakes_on_flush", test_poll_wakes_on_flush, 1, 40),
	T("hostile_map_group_file", test_hostile_map_group, 2, 60),
	T("hostile_install_straddles_read_only", test_hostile_install_straddle, 2, 30),
	T("hostile_install_never_faults_in", test_hostile_install_never_faults_in, 2, 60),
	T("hostile_sleep_signal_awake_race", test_hostile_sleep_race, 1, 120),

	T("params_default", test_params_default, 0, 10),
	T("params_max_message_size", test_params_message_size, 1, 15),
	T("params_shrink_storage_keeps_messages", test_params_shrink_storage, 1, 15),
	T("params_on_group_eperm", test_params_on_group, 1, 15),
	T("params_set_nonroot_eperm", test_params_set_nonroot, 0, 15),

	T("iov_transport_writev_merges", test_iov_transport_writev_merges, 1, 15),
	T("iov_transport_writev_total_too_big", test_iov_transport_writev_total_too_big, 1, 15),
	T("iov_transport_writev_page_split", test_iov_transport_writev_page_split, 1, 15),
	T("iov_transport_readv_merges", test_iov_transport_readv_merges, 1, 15),
	T("iov_transport_readv_page_split", test_iov_transport_readv_page_split, 1, 15),
	T("iov_transport_positional_espipe", test_iov_transport_positional_espipe, 1, 15),
	T("iov_transport_write_partly_mapped", test_iov_transport_write_partly_mapped, 1, 15),
	T("iov_transport_read_partly_mapped", test_iov_transport_read_partly_mapped, 1, 15),
	T("iov_shim_writev", test_iov_shim_writev, 1, 15),
	T("iov_shim_readv", test_iov_shim_readv, 1, 15),

	T("errnos_one_per_mistake", test_errnos_one_per_mistake, 1, 30),

	T("stress_delayed_flush", test_stress_delayed_flush, 8, 180),
	T("stress_full_groups", test_stress_full_groups, 4, 180),
	T("stress_8x8_64_groups", test_stress, MAX_NUM_GROUPS, 240),
};

static void usage(FILE *f)
{
	fprintf(f, "usage: synchmess-integration [--dev-dir DIR] "
		"[--transport cuse|fuse] [--filter SUBSTR]\n"
		"                             [--stress-messages N] [--peer-dev-dir DIR] [--list]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev-dir", required_argument, NULL, 'd' },
		{ "transport", required_argument, NULL, 't' },
		{ "filter", required_argument, NULL, 'f' },
		{ "stress-messages", required_argument, NULL, 's' },
		{ "peer-dev-dir", required_argument, NULL, 'p' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sm_ctx ctx;
	const char *transport = NULL, *filter = NULL;
	int c;

	memset(&ctx, 0, sizeof ctx);
	ctx.dev_dir = "/dev/synch";
	ctx.stress_messages = 2000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ctx.dev_dir = optarg;
			break;
		case 'p':
			ctx.peer_dir = optarg;
			break;
		case 't':
			transport = optarg;
			break;
		case 'f':
			filter = optarg;
			break;
		case 's': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n == 0 || n > 1000000) {
				usage(stderr);
				return 2;
			}
			ctx.stress_messages = (unsigned)n;
			break;
		}
		case 'l':
			for (size_t i = 0; i < sizeof all_tests / sizeof all_tests[0]; i++)
				printf("%s\n", all_tests[i].name);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (transport && strcmp(transport, "cuse") == 0) {
		ctx.transport = SM_CUSE;
	} else if (transport && strcmp(transport, "fuse") == 0) {
		ctx.transport = SM_FUSE;
	} else if (transport) {
		usage(stderr);
		return 2;
	} else {
		char path[300];
		struct stat st;
		snprintf(path, sizeof path, "%s/synchmess", ctx.dev_dir);
		if (stat(path, &st) != 0)
			fprintf(stderr, "# %s: %s\n", path, strerror(errno));
		ctx.transport = stat(path, &st) == 0 && S_ISCHR(st.st_mode) ? SM_CUSE
									   : SM_FUSE;
	}
	fprintf(stderr, "# synchmess-integration: dev-dir %s%s%s, transport %s\n",
		ctx.dev_dir, ctx.peer_dir ? ", peer " : "",
		ctx.peer_dir ? ctx.peer_dir : "",
		ctx.transport == SM_CUSE ? "cuse" : "fuse");

	if (filter) {
		size_t matched = 0;
		for (size_t i = 0; i < sizeof all_tests / sizeof all_tests[0]; i++)
			matched += strstr(all_tests[i].name, filter) != NULL;
		if (matched == 0) {
			fprintf(stderr, "no test name contains \"%s\" (see --list)\n",
				filter);
			return 2;
		}
	}

	int failed = sm_run(all_tests, sizeof all_tests / sizeof all_tests[0], &ctx,
			    filter);
	return failed == 0 ? 0 : 1;
}
