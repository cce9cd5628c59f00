/*
 * synchmess_classify.h - is this fd a synchmess device?  Shared by the
 * preload shim (libsynchmess-fsync.so) and the seccomp supervisor
 * (synchmess-fsync-supervise), so both agree on which fds they touch.
 *
 * Contract: synchmess_classify(fd) answers
 * - SYNCHMESS_CUSE_DEVICE for a character device whose major is the major of
 *   the master $SYNCHMESS_DEV_DIR/synchmess (default /dev/synch/synchmess):
 *   the CUSE transport (the master itself included);
 * - SYNCHMESS_FUSE_FILE for a regular file on the same FUSE filesystem as a
 *   master that is a regular file: the FUSE transport;
 * - SYNCHMESS_NOT_OURS for everything else, including a bad fd or no master.
 * It preserves errno.  Costs one fstat; a regular file on an anonymous-device
 * filesystem adds an fstatfs; a stat of the master only when the fd does not
 * match the cached identity (so a restarted daemon with a new major or mount
 * is picked up).
 *
 * Thread safety: safe from any thread; the master's identity is cached in
 * relaxed atomics, nothing else is shared.
 */
#ifndef SYNCHMESS_CLASSIFY_H
#define SYNCHMESS_CLASSIFY_H

enum synchmess_kind {
	SYNCHMESS_NOT_OURS,
	SYNCHMESS_CUSE_DEVICE,
	SYNCHMESS_FUSE_FILE,
};

enum synchmess_kind synchmess_classify(int fd);

#endif
