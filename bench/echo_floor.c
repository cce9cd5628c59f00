/*
 * echo_floor.c - synchmess-echo-floor: the transport floor for synchmess-bench.
 *
 * Contract: a bare libfuse low-level FUSE server that mounts, at --dir, the
 * file names of the SynchMess ABI (master "synchmess", groups "synchmess1"
 * .. "synchmess64") and does the least work that still lets the benchmark
 * client run unchanged:
 *   - write appends the message to a per-file byte ring (EPERM when it would
 *     exceed --storage bytes or when count > --max-message-size);
 *   - read pops one message, FIFO per file (returns 0 when empty);
 *   - IOCTL_INSTALL_GROUP on the master checks the descriptor (EBADF outside
 *     1..64) and echoes the 8 bytes it received, so device_path stays as the
 *     caller left it (FUSE ioctls are restricted: only 8 bytes move);
 *   - IOCTL_SLEEP is a deferred reply; IOCTL_AWAKE answers every pending
 *     sleeper of that file and returns how many;
 *   - SET_SEND_DELAY, REVOKE, FLUSH (ioctl 6) and fsync reply 0 and do
 *     nothing (the floor has no delayed messages).
 * Open sets direct_io + nonseekable (one message per read) and noflush.
 * Anything the daemon adds over this floor is the daemon's own cost.
 *
 * Thread safety: one mutex per file guards its ring and its sleeper list;
 * replies to sleepers are sent after that mutex is released.  A sleeper is
 * not interruptible (it ends when AWAKE comes or the server exits).
 * All state lives in struct floor_state, handed to libfuse as userdata.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "synchmess_interface.h"

enum { ROOT_INO = 1, MASTER_INO = 2, FIRST_GROUP_INO = 3 };

struct floor_file {
	pthread_mutex_t lock;
	unsigned char *ring; /* capacity bytes, allocated on first write */
	size_t head;         /* offset of the oldest byte */
	size_t used;         /* bytes in use, length prefixes included */
	fuse_req_t *sleepers;
	size_t n_sleepers, cap_sleepers;
};

struct floor_state {
	size_t max_message_size;
	size_t storage;
	struct floor_file files[MAX_NUM_GROUPS];
};

static struct floor_file *group_of(struct floor_state *st, fuse_ino_t ino)
{
	if (ino < FIRST_GROUP_INO || ino >= FIRST_GROUP_INO + MAX_NUM_GROUPS)
		return NULL;
	return &st->files[ino - FIRST_GROUP_INO];
}

static void ring_copy_in(struct floor_file *f, size_t cap, size_t at,
			 const void *src, size_t n)
{
	size_t pos = at % cap;
	size_t first = n < cap - pos ? n : cap - pos;
	memcpy(f->ring + pos, src, first);
	memcpy(f->ring, (const unsigned char *)src + first, n - first);
}

static void ring_copy_out(const struct floor_file *f, size_t cap, size_t at,
			  void *dst, size_t n)
{
	size_t pos = at % cap;
	size_t first = n < cap - pos ? n : cap - pos;
	memcpy(dst, f->ring + pos, first);
	memcpy((unsigned char *)dst + first, f->ring, n - first);
}

static void fill_attr(fuse_ino_t ino, struct stat *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->st_ino = ino;
	attr->st_nlink = 1;
	if (ino == ROOT_INO) {
		attr->st_mode = S_IFDIR | 0755;
		attr->st_nlink = 2;
	} else if (ino == MASTER_INO) {
		attr->st_mode = S_IFREG | 0444;
	} else {
		attr->st_mode = S_IFREG | 0666;
	}
}

/* "synchmess" -> MASTER_INO, "synchmessN" (1..64) -> its inode, else 0. */
static fuse_ino_t ino_of_name(const char *name)
{
	static const char prefix[] = "synchmess";
	size_t plen = sizeof(prefix) - 1;
	if (strncmp(name, prefix, plen) != 0)
		return 0;
	if (name[plen] == '\0')
		return MASTER_INO;
	char *end = NULL;
	long n = strtol(name + plen, &end, 10);
	if (*end != '\0' || name[plen] == '0' || n < 1 || n > MAX_NUM_GROUPS)
		return 0;
	return FIRST_GROUP_INO + (fuse_ino_t)(n - 1);
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino = parent == ROOT_INO ? ino_of_name(name) : 0;
	if (ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.attr_timeout = 3600.0;
	e.entry_timeout = 3600.0;
	fill_attr(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)fi;
	if (ino != ROOT_INO && ino != MASTER_INO &&
	    group_of(fuse_req_userdata(req), ino) == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct stat attr;
	fill_attr(ino, &attr);
	fuse_reply_attr(req, &attr, 3600.0);
}

static void floor_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char *buf = calloc(1, size);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	/* entry k: 0 ".", 1 "..", 2 master, 3.. groups */
	for (off_t k = off; k < 3 + MAX_NUM_GROUPS; k++) {
		char name[32];
		struct stat attr;
		fuse_ino_t eino;
		if (k == 0) {
			snprintf(name, sizeof(name), ".");
			eino = ROOT_INO;
		} else if (k == 1) {
			snprintf(name, sizeof(name), "..");
			eino = ROOT_INO;
		} else if (k == 2) {
			snprintf(name, sizeof(name), "synchmess");
			eino = MASTER_INO;
		} else {
			snprintf(name, sizeof(name), "synchmess%d", (int)(k - 2));
			eino = FIRST_GROUP_INO + (fuse_ino_t)(k - 3);
		}
		fill_attr(eino, &attr);
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						name, &attr, k + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (ino == ROOT_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino == MASTER_INO && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)off;
	(void)fi;
	struct floor_state *st = fuse_req_userdata(req);
	struct floor_file *f = group_of(st, ino);
	if (f == NULL) {
		fuse_reply_err(req, EPERM);
		return;
	}
	unsigned char msg[4096];
	unsigned char *out = size <= sizeof(msg) ? msg : malloc(size);
	if (out == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t copied = 0;
	pthread_mutex_lock(&f->lock);
	if (f->used > 0) {
		unsigned len;
		ring_copy_out(f, st->storage, f->head, &len, sizeof(len));
		copied = len < size ? len : size;
		ring_copy_out(f, st->storage, f->head + sizeof(len), out, copied);
		f->head = (f->head + sizeof(len) + len) % st->storage;
		f->used -= sizeof(len) + len;
	}
	pthread_mutex_unlock(&f->lock);
	fuse_reply_buf(req, (const char *)out, copied);
	if (out != msg)
		free(out);
}

static void floor_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)off;
	(void)fi;
	struct floor_state *st = fuse_req_userdata(req);
	struct floor_file *f = group_of(st, ino);
	if (f == NULL || size > st->max_message_size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	unsigned len = (unsigned)size;
	int err = 0;
	pthread_mutex_lock(&f->lock);
	if (f->ring == NULL)
		f->ring = malloc(st->storage);
	if (f->ring == NULL) {
		err = ENOMEM;
	} else if (f->used + sizeof(len) + size > st->storage) {
		err = EPERM;
	} else {
		size_t tail = f->head + f->used;
		ring_copy_in(f, st->storage, tail, &len, sizeof(len));
		ring_copy_in(f, st->storage, tail + sizeof(len), buf, size);
		f->used += sizeof(len) + size;
	}
	pthread_mutex_unlock(&f->lock);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

static void floor_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, group_of(fuse_req_userdata(req), ino) ? 0 : EPERM);
}

static void floor_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void floor_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void master_ioctl(fuse_req_t req, unsigned cmd, const void *in_buf,
			 size_t in_bufsz)
{
	if (cmd != IOCTL_INSTALL_GROUP) {
		fuse_reply_err(req, EPERM);
		return;
	}
	unsigned descriptor = 0;
	if (in_bufsz >= sizeof(descriptor))
		memcpy(&descriptor, in_buf, sizeof(descriptor));
	if (descriptor < 1 || descriptor > MAX_NUM_GROUPS) {
		fuse_reply_err(req, EBADF);
		return;
	}
	/* The kernel copies our out bytes over the caller's struct: echo. */
	fuse_reply_ioctl(req, 0, in_buf, in_bufsz);
}

static void group_awake(fuse_req_t req, struct floor_file *f)
{
	pthread_mutex_lock(&f->lock);
	fuse_req_t *woken = f->sleepers;
	size_t n = f->n_sleepers;
	f->sleepers = NULL;
	f->n_sleepers = f->cap_sleepers = 0;
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; i < n; i++)
		fuse_reply_ioctl(woken[i], 0, NULL, 0);
	free(woken);
	fuse_reply_ioctl(req, (int)n, NULL, 0);
}

static void group_sleep(fuse_req_t req, struct floor_file *f)
{
	int err = 0;
	pthread_mutex_lock(&f->lock);
	if (f->n_sleepers == f->cap_sleepers) {
		size_t cap = f->cap_sleepers ? 2 * f->cap_sleepers : 16;
		fuse_req_t *grown = realloc(f->sleepers, cap * sizeof(*grown));
		if (grown == NULL) {
			err = ENOMEM;
		} else {
			f->sleepers = grown;
			f->cap_sleepers = cap;
		}
	}
	if (!err)
		f->sleepers[f->n_sleepers++] = req; /* replied by AWAKE */
	pthread_mutex_unlock(&f->lock);
	if (err)
		fuse_reply_err(req, err);
}

static void floor_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
			void *arg, struct fuse_file_info *fi, unsigned flags,
			const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	(void)arg;
	(void)fi;
	(void)out_bufsz;
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (ino == MASTER_INO) {
		master_ioctl(req, cmd, in_buf, in_bufsz);
		return;
	}
	struct floor_file *f = group_of(fuse_req_userdata(req), ino);
	if (f == NULL) {
		fuse_reply_err(req, EPERM);
		return;
	}
	switch (cmd) {
	case IOCTL_SLEEP:
		group_sleep(req, f);
		break;
	case IOCTL_AWAKE:
		group_awake(req, f);
		break;
	case IOCTL_SET_SEND_DELAY:
	case IOCTL_REVOKE_DELAYED_MESSAGES:
	case IOCTL_FLUSH_DELAYED_MESSAGES:
		fuse_reply_ioctl(req, 0, NULL, 0);
		break;
	default:
		fuse_reply_err(req, EPERM);
		break;
	}
}

static const struct fuse_lowlevel_ops floor_ops = {
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.readdir = floor_readdir,
	.open = floor_open,
	.read = floor_read,
	.write = floor_write,
	.fsync = floor_fsync,
	.flush = floor_flush,
	.release = floor_release,
	.ioctl = floor_ioctl,
};

struct floor_options {
	const char *dir;
	unsigned threads;
	size_t max_message_size;
	size_t storage;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: synchmess-echo-floor --dir DIR [--threads N]\n"
		"         [--max-message-size BYTES] [--storage BYTES]\n"
		"Mounts a minimal FUSE echo device (synchmess, synchmess1..64)\n"
		"at DIR and serves it in the foreground until SIGINT/SIGTERM.\n");
}

static int parse_options(int argc, char **argv, struct floor_options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (v == NULL) {
			fprintf(stderr, "missing value for %s\n", a);
			return -1;
		}
		if (strcmp(a, "--dir") == 0)
			o->dir = v;
		else if (strcmp(a, "--threads") == 0)
			o->threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--max-message-size") == 0)
			o->max_message_size = strtoull(v, NULL, 10);
		else if (strcmp(a, "--storage") == 0)
			o->storage = strtoull(v, NULL, 10);
		else {
			fprintf(stderr, "unknown option %s\n", a);
			return -1;
		}
		i++;
	}
	if (o->dir == NULL || o->threads == 0 || o->max_message_size == 0 ||
	    o->storage < o->max_message_size + sizeof(unsigned)) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct floor_options o = { .dir = NULL,
				   .threads = 10,
				   .max_message_size = 1024,
				   .storage = 1048576 };
	if (parse_options(argc, argv, &o) != 0)
		return 2;

	struct floor_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return 1;
	st->max_message_size = o.max_message_size;
	st->storage = o.storage;
	for (int i = 0; i < MAX_NUM_GROUPS; i++)
		pthread_mutex_init(&st->files[i].lock, NULL);

	char *fuse_argv[] = { argv[0], "-o",
			      "allow_other,fsname=synchmess-echo-floor,"
			      "subtype=synchmess-echo-floor",
			      NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
	int rc = 1;
	struct fuse_session *se =
		fuse_session_new(&args, &floor_ops, sizeof(floor_ops), st);
	if (se == NULL)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, o.dir) != 0)
		goto out_signals;

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, o.threads);
	fuse_loop_cfg_set_idle_threads(cfg, o.threads);
	rc = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	for (int i = 0; i < MAX_NUM_GROUPS; i++) {
		free(st->files[i].ring);
		free(st->files[i].sleepers);
		pthread_mutex_destroy(&st->files[i].lock);
	}
	free(st);
	return rc;
}
