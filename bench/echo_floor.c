/*
 * echo_floor.c - synchmess-echo-floor: the transport floor for synchmess-bench.
 *
 * Contract: a bare libfuse low-level server mounting at --dir the files of
 * the ABI ("synchmess", "synchmess1".."synchmess64") and doing the least
 * work the benchmark needs: write appends to a per-file byte ring (EPERM
 * beyond --storage or --max-message-size); read pops one message (0 when
 * empty); IOCTL_INSTALL_GROUP checks the descriptor (EBADF outside 1..64)
 * and echoes the 8 bytes FUSE moves; IOCTL_SLEEP is a deferred reply that
 * IOCTL_AWAKE answers for every sleeper of the file (returning how many);
 * SET_SEND_DELAY, REVOKE, FLUSH and fsync reply 0.  Open sets direct_io,
 * nonseekable and noflush.  What the daemon adds is the daemon's own cost.
 * --threads 1 serves with libfuse's single-threaded loop
 * (fuse_session_loop); more with its multi-threaded loop, that many
 * workers (the bare multi-threaded server).
 *
 * Thread safety: a mutex per file guards its ring and sleepers; replies go
 * out after it is released.  Sleepers are not interruptible.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synchmess_interface.h"

enum { ROOT_INO = 1, MASTER_INO = 2, FIRST_GROUP_INO = 3 };

struct floor_state {
	char *dir; /* the options */
	unsigned threads, help;
	size_t max_message_size, storage;
	struct floor_file {
		pthread_mutex_t lock;
		unsigned char *ring; /* storage bytes, allocated on first write */
		size_t head, used;   /* oldest byte; bytes in use, length prefixes included */
		fuse_req_t *sleepers;
		size_t n_sleepers;
	} files[MAX_NUM_GROUPS];
};

static struct floor_file *group_of(fuse_req_t req, fuse_ino_t ino)
{
	struct floor_state *st = fuse_req_userdata(req);
	if (ino < FIRST_GROUP_INO || ino >= FIRST_GROUP_INO + MAX_NUM_GROUPS)
		return NULL;
	return &st->files[ino - FIRST_GROUP_INO];
}

/* Copies n bytes at ring offset `at` (wrapping), into or out of the ring. */
static void ring_copy(struct floor_file *f, size_t cap, size_t at, void *p, size_t n, int in)
{
	size_t pos = at % cap, first = n < cap - pos ? n : cap - pos;
	unsigned char *b = p;
	memcpy(in ? f->ring + pos : b, in ? b : f->ring + pos, first);
	memcpy(in ? f->ring : b + first, in ? b + first : f->ring, n - first);
}

static void fill_attr(fuse_ino_t ino, struct stat *a)
{
	memset(a, 0, sizeof(*a));
	a->st_ino = ino;
	a->st_nlink = ino == ROOT_INO ? 2 : 1;
	a->st_mode = ino == ROOT_INO ? S_IFDIR | 0755 : ino == MASTER_INO ? S_IFREG | 0444 : S_IFREG | 0666;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	/* "synchmess" -> master, "synchmessN" (1..64, no leading 0) -> group N */
	struct fuse_entry_param e = { .attr_timeout = 3600.0, .entry_timeout = 3600.0 };
	char *end = NULL;
	long n = strncmp(name, "synchmess", 9) == 0 && name[9] != '0' ? strtol(name + 9, &end, 10) : -1;
	if (parent == ROOT_INO && strcmp(name, "synchmess") == 0)
		e.ino = MASTER_INO;
	else if (parent == ROOT_INO && end && *end == '\0' && n >= 1 && n <= MAX_NUM_GROUPS)
		e.ino = FIRST_GROUP_INO + (fuse_ino_t)(n - 1);
	else
		return (void)fuse_reply_err(req, ENOENT);
	fill_attr(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat attr;
	(void)fi;
	if (ino != ROOT_INO && ino != MASTER_INO && group_of(req, ino) == NULL)
		return (void)fuse_reply_err(req, ENOENT);
	fill_attr(ino, &attr);
	fuse_reply_attr(req, &attr, 3600.0);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == ROOT_INO)
		return (void)fuse_reply_err(req, EISDIR);
	if (ino == MASTER_INO && (fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EPERM);
	fi->direct_io = fi->nonseekable = fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct floor_state *st = fuse_req_userdata(req);
	struct floor_file *f = group_of(req, ino);
	unsigned char msg[4096], *out = size <= sizeof(msg) ? msg : malloc(size);
	size_t copied = 0;
	unsigned len;
	(void)off, (void)fi;
	if (f && out) {
		pthread_mutex_lock(&f->lock);
		if (f->used > 0) {
			ring_copy(f, st->storage, f->head, &len, sizeof(len), 0);
			copied = len < size ? len : size;
			ring_copy(f, st->storage, f->head + sizeof(len), out, copied, 0);
			f->head = (f->head + sizeof(len) + len) % st->storage;
			f->used -= sizeof(len) + len;
		}
		pthread_mutex_unlock(&f->lock);
	}
	if (f && out)
		fuse_reply_buf(req, (const char *)out, copied);
	else
		fuse_reply_err(req, f ? ENOMEM : EPERM);
	if (out != msg)
		free(out);
}

static void floor_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct floor_state *st = fuse_req_userdata(req);
	struct floor_file *f = group_of(req, ino);
	unsigned len = (unsigned)size;
	int err = 0;
	(void)off, (void)fi;
	if (f == NULL || size > st->max_message_size)
		return (void)fuse_reply_err(req, EPERM);
	pthread_mutex_lock(&f->lock);
	if (f->ring == NULL && (f->ring = malloc(st->storage)) == NULL) {
		err = ENOMEM;
	} else if ((err = f->used + sizeof(len) + size > st->storage ? EPERM : 0) == 0) {
		ring_copy(f, st->storage, f->head + f->used, &len, sizeof(len), 1);
		ring_copy(f, st->storage, f->head + f->used + sizeof(len), (void *)buf, size, 1);
		f->used += sizeof(len) + size;
	}
	pthread_mutex_unlock(&f->lock);
	err ? fuse_reply_err(req, err) : fuse_reply_write(req, size);
}

static void floor_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync, (void)fi;
	fuse_reply_err(req, group_of(req, ino) ? 0 : EPERM);
}

static void floor_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0); /* flush, release */
}

static void floor_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
			struct fuse_file_info *fi, unsigned flags, const void *in_buf,
			size_t in_bufsz, size_t out_bufsz)
{
	struct floor_file *f = group_of(req, ino);
	unsigned descriptor = 0;
	fuse_req_t *woken;
	size_t n;
	(void)arg, (void)fi, (void)out_bufsz;
	if (flags & FUSE_IOCTL_COMPAT)
		return (void)fuse_reply_err(req, ENOSYS);
	if (ino == MASTER_INO && cmd == IOCTL_INSTALL_GROUP) {
		if (in_bufsz >= sizeof(descriptor))
			memcpy(&descriptor, in_buf, sizeof(descriptor));
		if (descriptor < 1 || descriptor > MAX_NUM_GROUPS)
			return (void)fuse_reply_err(req, EBADF);
		/* The kernel copies our out bytes over the caller's struct: echo. */
		return (void)fuse_reply_ioctl(req, 0, in_buf, in_bufsz);
	}
	if (f == NULL)
		return (void)fuse_reply_err(req, EPERM);
	switch (cmd) {
	case IOCTL_SLEEP: /* replied by AWAKE */
		pthread_mutex_lock(&f->lock);
		woken = realloc(f->sleepers, (f->n_sleepers + 1) * sizeof(*woken));
		if (woken) {
			f->sleepers = woken;
			f->sleepers[f->n_sleepers++] = req;
		}
		pthread_mutex_unlock(&f->lock);
		if (woken == NULL)
			fuse_reply_err(req, ENOMEM);
		break;
	case IOCTL_AWAKE:
		pthread_mutex_lock(&f->lock);
		woken = f->sleepers;
		n = f->n_sleepers;
		f->sleepers = NULL;
		f->n_sleepers = 0;
		pthread_mutex_unlock(&f->lock);
		for (size_t i = 0; i < n; i++)
			fuse_reply_ioctl(woken[i], 0, NULL, 0);
		free(woken);
		fuse_reply_ioctl(req, (int)n, NULL, 0);
		break;
	case IOCTL_SET_SEND_DELAY:
	case IOCTL_REVOKE_DELAYED_MESSAGES:
	case IOCTL_FLUSH_DELAYED_MESSAGES:
		fuse_reply_ioctl(req, 0, NULL, 0);
		break;
	default:
		fuse_reply_err(req, EPERM);
	}
}

static const struct fuse_lowlevel_ops floor_ops = {
	.lookup = floor_lookup, .getattr = floor_getattr, .open = floor_open,
	.read = floor_read, .write = floor_write, .fsync = floor_fsync,
	.flush = floor_ok, .release = floor_ok, .ioctl = floor_ioctl,
};

#define OPT(t, m) { t, offsetof(struct floor_state, m), 0 }
static const struct fuse_opt floor_opts[] = {
	OPT("--dir %s", dir), OPT("--threads %u", threads),
	OPT("--max-message-size %zu", max_message_size), OPT("--storage %zu", storage),
	{ "--help", offsetof(struct floor_state, help), 1 },
	{ "-h", offsetof(struct floor_state, help), 1 }, FUSE_OPT_END
};

int main(int argc, char **argv)
{
	static struct floor_state state = { .threads = 10, .max_message_size = 1024, .storage = 1048576 };
	struct floor_state *st = &state; /* libfuse's userdata */
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_session *se = NULL;
	int rc = 2;

	if (fuse_opt_parse(&args, st, floor_opts, NULL) != 0 || st->help || !st->dir ||
	    !st->threads || !st->max_message_size || st->storage < st->max_message_size + sizeof(unsigned)) {
		fprintf(st->help ? stdout : stderr,
			"usage: synchmess-echo-floor --dir DIR [--threads N (10; 1: single-threaded loop)]\n"
			"         [--max-message-size BYTES (1024)] [--storage BYTES (1048576)]\n"
			"Mounts a minimal FUSE echo device (synchmess, synchmess1..64)\n"
			"at DIR and serves it in the foreground until SIGINT/SIGTERM.\n");
		rc = st->help ? 0 : 2;
		goto out;
	}
	for (int i = 0; i < MAX_NUM_GROUPS; i++)
		pthread_mutex_init(&st->files[i].lock, NULL);
	fuse_opt_add_arg(&args, "-oallow_other,fsname=synchmess-echo-floor,subtype=synchmess-echo-floor");
	rc = 1;
	se = fuse_session_new(&args, &floor_ops, sizeof(floor_ops), st);
	if (se && fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, st->dir) == 0) {
			if (st->threads == 1) {
				rc = fuse_session_loop(se) == 0 ? 0 : 1;
			} else {
				struct fuse_loop_config *cfg = fuse_loop_cfg_create();
				fuse_loop_cfg_set_max_threads(cfg, st->threads);
				fuse_loop_cfg_set_idle_threads(cfg, st->threads);
				rc = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
				fuse_loop_cfg_destroy(cfg);
			}
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	if (se)
		fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	for (int i = 0; i < MAX_NUM_GROUPS; i++)
		free(st->files[i].ring), free(st->files[i].sleepers);
	free(st->dir);
	return rc;
}
