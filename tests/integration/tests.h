/*
 * tests.h - every test of synchmess-integration; the table is in main.c.
 * Each returns SM_PASS, SM_FAIL (reason in ctx) or SM_SKIP.
 */
#ifndef SYNCHMESS_INTEGRATION_TESTS_H
#define SYNCHMESS_INTEGRATION_TESTS_H

#include "harness.h"

/* test_master.c */
enum sm_result test_master_open_wronly(struct sm_ctx *ctx);
enum sm_result test_master_open_rdwr(struct sm_ctx *ctx);
enum sm_result test_master_read(struct sm_ctx *ctx);
enum sm_result test_master_fsync(struct sm_ctx *ctx);
enum sm_result test_master_ioctl_eperm(struct sm_ctx *ctx);
enum sm_result test_master_install_efault(struct sm_ctx *ctx);
enum sm_result test_master_install_ebadf(struct sm_ctx *ctx);
enum sm_result test_master_install(struct sm_ctx *ctx);
enum sm_result test_master_install_keeps_state(struct sm_ctx *ctx);
enum sm_result test_master_install_concurrent(struct sm_ctx *ctx);

/* test_group.c */
enum sm_result test_group_write_too_big(struct sm_ctx *ctx);
enum sm_result test_group_write_max(struct sm_ctx *ctx);
enum sm_result test_group_storage_limit(struct sm_ctx *ctx);
enum sm_result test_group_read_empty(struct sm_ctx *ctx);
enum sm_result test_group_fifo(struct sm_ctx *ctx);
enum sm_result test_group_short_read(struct sm_ctx *ctx);
enum sm_result test_group_no_split(struct sm_ctx *ctx);
enum sm_result test_group_isolation(struct sm_ctx *ctx);
enum sm_result test_group_unknown_ioctl(struct sm_ctx *ctx);

/* test_delay.c */
enum sm_result test_delay_write(struct sm_ctx *ctx);
enum sm_result test_delay_order(struct sm_ctx *ctx);
enum sm_result test_delay_set_pending(struct sm_ctx *ctx);
enum sm_result test_delay_revoke(struct sm_ctx *ctx);
enum sm_result test_delay_flush_ioctl(struct sm_ctx *ctx);
enum sm_result test_delay_fsync(struct sm_ctx *ctx);
enum sm_result test_delay_storage_reserved(struct sm_ctx *ctx);
enum sm_result test_delay_back_to_zero(struct sm_ctx *ctx);
enum sm_result test_delay_close_no_flush(struct sm_ctx *ctx);
enum sm_result test_delay_bad_pointer(struct sm_ctx *ctx);
enum sm_result test_delay_huge(struct sm_ctx *ctx);
enum sm_result test_delay_per_group(struct sm_ctx *ctx);

/* test_barrier.c */
enum sm_result test_barrier_awake_counts(struct sm_ctx *ctx);
enum sm_result test_barrier_awake_none(struct sm_ctx *ctx);
enum sm_result test_barrier_groups_independent(struct sm_ctx *ctx);
enum sm_result test_barrier_signal_eintr(struct sm_ctx *ctx);
enum sm_result test_barrier_sigkill(struct sm_ctx *ctx);
enum sm_result test_barrier_many_sleepers(struct sm_ctx *ctx);
enum sm_result test_barrier_signal_awake_race(struct sm_ctx *ctx);

/* test_poll.c */
enum sm_result test_poll_empty_then_write(struct sm_ctx *ctx);
enum sm_result test_poll_wakes_on_write(struct sm_ctx *ctx);
enum sm_result test_poll_wakes_on_delayed(struct sm_ctx *ctx);
enum sm_result test_poll_wakes_on_flush(struct sm_ctx *ctx);

/* test_hostile.c */
enum sm_result test_hostile_map_group(struct sm_ctx *ctx);
enum sm_result test_hostile_install_straddle(struct sm_ctx *ctx);
enum sm_result test_hostile_install_never_faults_in(struct sm_ctx *ctx);
enum sm_result test_hostile_sleep_race(struct sm_ctx *ctx);

/* test_params.c */
enum sm_result test_params_default(struct sm_ctx *ctx);
enum sm_result test_params_message_size(struct sm_ctx *ctx);
enum sm_result test_params_shrink_storage(struct sm_ctx *ctx);
enum sm_result test_params_on_group(struct sm_ctx *ctx);
enum sm_result test_params_set_nonroot(struct sm_ctx *ctx);

/* test_iov.c */
enum sm_result test_iov_transport_writev_merges(struct sm_ctx *ctx);
enum sm_result test_iov_transport_writev_total_too_big(struct sm_ctx *ctx);
enum sm_result test_iov_transport_writev_page_split(struct sm_ctx *ctx);
enum sm_result test_iov_transport_readv_merges(struct sm_ctx *ctx);
enum sm_result test_iov_transport_readv_page_split(struct sm_ctx *ctx);
enum sm_result test_iov_transport_positional_espipe(struct sm_ctx *ctx);
enum sm_result test_iov_transport_write_partly_mapped(struct sm_ctx *ctx);
enum sm_result test_iov_transport_read_partly_mapped(struct sm_ctx *ctx);
enum sm_result test_iov_shim_writev(struct sm_ctx *ctx);
enum sm_result test_iov_shim_readv(struct sm_ctx *ctx);

/* test_errnos.c */
enum sm_result test_errnos_one_per_mistake(struct sm_ctx *ctx);

/* test_stress.c */
enum sm_result test_stress(struct sm_ctx *ctx);
enum sm_result test_stress_delayed_flush(struct sm_ctx *ctx);
enum sm_result test_stress_full_groups(struct sm_ctx *ctx);

#endif /* SYNCHMESS_INTEGRATION_TESTS_H */
