/*
 * fsync_supervise.c - synchmess-fsync-supervise: run a program so that
 * fsync()/fdatasync() on a synchmess CUSE device flush its delayed messages
 * even where the preload shim cannot reach: statically linked programs
 * (which ignore LD_PRELOAD) and raw syscall(SYS_fsync, ...) calls.
 *
 *   synchmess-fsync-supervise [--auto | --always] [--preload LIB] [--]
 *                             PROGRAM [ARG...]
 *
 * Normally run by the synchmess-fsync wrapper, with --preload naming the
 * preload shim: it is put in front of LD_PRELOAD for PROGRAM only (this
 * process does not load it).
 *
 * Contract:
 * - --auto (default): if PROGRAM (found through PATH like execvp; a "#!"
 *   script is judged by its interpreter) is an ELF file without PT_INTERP,
 *   i.e. statically linked, it is supervised; anything else is exec'ed in
 *   place of the supervisor, unchanged.  --always supervises whatever it is.
 * - Supervised: PROGRAM runs in a child with a seccomp filter that sends
 *   fsync and fdatasync (x86-64: also their i386 and x32 numbers) to this
 *   process as user notifications; every other syscall is untouched.  The
 *   filter is inherited by every thread, fork and exec of the program; this
 *   process serves them all.  For each call it takes a copy of the caller's
 *   fd (pidfd_getfd); if that is a synchmess CUSE device
 *   (synchmess_classify.h, the same test as the preload shim) it issues
 *   IOCTL_FLUSH_DELAYED_MESSAGES on the copy and answers with its result (0
 *   or -errno: a group flushes, the master refuses with EPERM); for any
 *   other fd, or if the copy cannot be taken, the kernel runs the real
 *   syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE), errno and all.  Files of the
 *   FUSE transport take the real syscall too: FUSE delivers fsync itself.
 * - Unless this process has CAP_SYS_ADMIN, the filter needs no_new_privs:
 *   set-user-ID, set-group-ID and file capabilities do not take effect in
 *   the program.
 * - SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process are passed on
 *   to the program (not those a terminal sends to the whole foreground
 *   process group, which the program receives itself).
 * - This process is a child subreaper: descendants the program leaves
 *   behind stay its children (so their fsync still reaches it) and it waits
 *   for all of them before it exits; a passed-on signal that arrives after
 *   the program itself has exited ends the wait at once (the rest then get
 *   ENOSYS from fsync: the filter has nobody to ask).
 * - Exit status: the program's; killed by a signal, the same signal kills
 *   this process (without a core dump).  126 when the filter cannot be
 *   installed (kernels before 5.6 lack SECCOMP_RET_USER_NOTIF, 5.0, or
 *   pidfd_getfd, 5.6) or PROGRAM cannot be executed, 127 when it is not
 *   found, 2 for a usage error.
 *
 * Thread safety: one thread; notifications are served one at a time.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "synchmess_classify.h"
#include "synchmess_interface.h"

#define ME "synchmess-fsync"

/* ---- which programs: static ELF or not ------------------------------------ */

/* PROGRAM's path as execvp would find it, in buf; NULL if not found. */
static const char *find_program(const char *name, char *buf, size_t size)
{
	const char *path = getenv("PATH"), *p, *end;
	struct stat st;

	if (strchr(name, '/'))
		return name;
	if (!path)
		path = "/bin:/usr/bin";
	for (p = path;; p = end + 1) {
		size_t len;

		end = strchr(p, ':');
		len = end ? (size_t)(end - p) : strlen(p);
		if (snprintf(buf, size, "%.*s%s%s", (int)len, p, len ? "/" : "", name) <
			    (int)size &&
		    stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return buf;
		if (!end)
			return NULL;
	}
}

/* 1 if the ELF file on fd has no PT_INTERP (statically linked), 0 if it has
 * one, -1 if it is not a native ELF file. */
static int elf_is_static(int fd)
{
	unsigned char ident[EI_NIDENT];
	unsigned long long phoff;
	unsigned phnum, phentsize, type;

	if (pread(fd, ident, sizeof ident, 0) != (ssize_t)sizeof ident ||
	    memcmp(ident, ELFMAG, SELFMAG) != 0 ||
	    ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB
									: ELFDATA2MSB))
		return -1;
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
			return -1;
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf64_Phdr))
			return -1;
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
			return -1;
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf32_Phdr))
			return -1;
	} else {
		return -1;
	}
	/* p_type is the first word of both Elf32_Phdr and Elf64_Phdr. */
	for (unsigned i = 0; i < phnum; i++) {
		if (pread(fd, &type, sizeof type, (off_t)(phoff + (unsigned long long)i * phentsize)) !=
		    (ssize_t)sizeof type)
			return -1;
		if (type == PT_INTERP)
			return 0;
	}
	return 1;
}

/* 1 if path is a statically linked program, or a "#!" script whose
 * interpreter is one (up to four levels, as the kernel allows); else 0. */
static int program_is_static(const char *path, int depth)
{
	char line[PATH_MAX + 3], *interp, *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;
	ssize_t n;

	if (fd < 0)
		return 0;
	r = elf_is_static(fd);
	if (r >= 0 || depth >= 4) {
		close(fd);
		return r > 0;
	}
	n = pread(fd, line, sizeof line - 1, 0);
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	interp = line + 2 + strspn(line + 2, " \t");
	end = interp + strcspn(interp, " \t\n");
	*end = '\0';
	return *interp == '/' && program_is_static(interp, depth + 1);
}

/* ---- the filter ------------------------------------------------------------ */

#define LD_FIELD(f) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, f))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

#if defined(__x86_64__)
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
/* x86-64 (x32 too: the same numbers with __X32_SYSCALL_BIT), then i386. */
static struct sock_filter filter_code[] = {
	/* 0 */ LD_FIELD(arch),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4), /* -> 6 */
	/* 2 */ LD_FIELD(nr),
	/* 3 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~(__u32)__X32_SYSCALL_BIT),
	/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 74 /* fsync */, 6, 0), /* -> 11 */
	/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 75 /* fdatasync */, 5, 4), /* -> 11, 10 */
	/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 3), /* -> 10 */
	/* 7 */ LD_FIELD(nr),
	/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 118 /* fsync */, 2, 0), /* -> 11 */
	/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 148 /* fdatasync */, 1, 0), /* -> 11 */
	/* 10 */ RET(SECCOMP_RET_ALLOW),
	/* 11 */ RET(SECCOMP_RET_USER_NOTIF),
};
_Static_assert(__NR_fsync == 74 && __NR_fdatasync == 75, "x86-64 numbers");
#else
#if defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#elif defined(__arm__)
#define NATIVE_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define NATIVE_ARCH AUDIT_ARCH_S390X
#else
#error "synchmess-fsync-supervise: add this architecture's AUDIT_ARCH"
#endif
static struct sock_filter filter_code[] = {
	/* 0 */ LD_FIELD(arch),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 0, 3), /* -> 5 */
	/* 2 */ LD_FIELD(nr),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fsync, 2, 0), /* -> 6 */
	/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fdatasync, 1, 0), /* -> 6 */
	/* 5 */ RET(SECCOMP_RET_ALLOW),
	/* 6 */ RET(SECCOMP_RET_USER_NOTIF),
};
#endif

/* Installs the filter on the calling thread; the listener fd, or -1 with
 * errno.  Tries without no_new_privs first (works with CAP_SYS_ADMIN). */
static int install_filter(void)
{
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof filter_code / sizeof filter_code[0]),
		.filter = filter_code,
	};
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);

	if (fd < 0 && errno == EACCES) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			return -1;
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			     SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	}
	return (int)fd;
}

/* ---- passing the listener from the child to the supervisor ---------------- */

/* Sends err (0 = ok) and, if fd >= 0, fd itself over the socket. */
static void send_listener(int sock, int fd, int err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { &err, sizeof err };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof u.buf;
		CMSG_FIRSTHDR(&msg)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&msg)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&msg)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&msg)), &fd, sizeof fd);
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* The listener the child sent, or -1 with *err set (0: the child died
 * before it sent anything). */
static int recv_listener(int sock, int *err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { err, sizeof *err };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *c;
	ssize_t n;
	int fd = -1;

	*err = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*err = errno;
	if (n != (ssize_t)sizeof *err)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if (fd < 0 && *err == 0)
		*err = EPROTO;
	return fd;
}

/* ---- serving notifications ---------------------------------------------- */

struct notif_bufs {
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	size_t req_size, resp_size;
};

static int alloc_bufs(struct notif_bufs *b)
{
	struct seccomp_notif_sizes sizes;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
		return -1;
	/* The kernel's structures may be larger than ours (newer kernel). */
	b->req_size = sizes.seccomp_notif > sizeof *b->req ? sizes.seccomp_notif
							   : sizeof *b->req;
	b->resp_size = sizes.seccomp_notif_resp > sizeof *b->resp
			       ? sizes.seccomp_notif_resp
			       : sizeof *b->resp;
	b->req = calloc(1, b->req_size);
	b->resp = calloc(1, b->resp_size);
	return b->req && b->resp ? 0 : -1;
}

/* The thread group id of thread tid, from /proc; -1 if unknown. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], line[256];
	pid_t tgid = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

enum { TARGET_GONE = -2 };

/* A copy of the notifying thread's fd: >= 0; -1 when it cannot be had (a
 * bad fd, or no access: let the kernel answer); TARGET_GONE when the call
 * is no longer pending (the thread was killed: do not answer). */
static int copy_target_fd(int listener, const struct seccomp_notif *req, int fd)
{
	pid_t pid = (pid_t)req->pid;
	int pidfd, copy = -1;
	__u64 id = req->id;

	/* pidfd_open wants a thread group leader: another thread's id gives
	 * EINVAL (ENOENT since Linux 6.9); its process shares its fd table. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && (errno == EINVAL || errno == ENOENT) && (pid = tgid_of(pid)) > 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Checked after pidfd_open: if the call is still pending, the pid was
	 * not reused in between, so pidfd is the caller's process. */
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) {
		if (pidfd >= 0)
			close(pidfd);
		return TARGET_GONE;
	}
	if (pidfd >= 0) {
		copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		close(pidfd);
	}
	return copy;
}

/* Receives and answers one notification.  0, or -1 if the listener failed. */
static int serve_one(int listener, struct notif_bufs *b)
{
	struct seccomp_notif *req = b->req;
	struct seccomp_notif_resp *resp = b->resp;
	int copy;

	memset(req, 0, b->req_size);
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0)
		return errno == EINTR || errno == ENOENT ? 0 : -1;
	memset(resp, 0, b->resp_size);
	resp->id = req->id;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	/* fsync(int fd) and fdatasync(int fd): the low 32 bits, any ABI. */
	copy = copy_target_fd(listener, req, (int)(__u32)req->data.args[0]);
	if (copy == TARGET_GONE)
		return 0;
	if (copy >= 0) {
		if (synchmess_classify(copy) == SYNCHMESS_CUSE_DEVICE) {
			resp->flags = 0;
			resp->error = ioctl(copy, IOCTL_FLUSH_DELAYED_MESSAGES) == 0 ? 0 : -errno;
		}
		close(copy);
	}
	/* ENOENT: the caller was killed meanwhile; nobody waits for the answer. */
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp) != 0 && errno != ENOENT &&
	    errno != EINTR)
		fprintf(stderr, ME ": answering a notification: %s\n", strerror(errno));
	return 0;
}

/* ---- the supervisor ------------------------------------------------------- */

/* Ends this process the way status says the program ended. */
__attribute__((noreturn)) static void exit_like(int status)
{
	struct rlimit no_core = { 0, 0 };
	sigset_t s;
	int sig;

	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	sig = WTERMSIG(status);
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigemptyset(&s);
	sigaddset(&s, sig);
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	exit(128 + sig);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static int supervise(char **argv)
{
	struct notif_bufs bufs;
	sigset_t handled, old;
	int sv[2], sfd, listener, err, status = 0;
	int main_done = 0, children_left = 1;
	pid_t child;

	if (alloc_bufs(&bufs) != 0) {
		fprintf(stderr, ME ": this kernel has no seccomp user notification "
			"(SECCOMP_RET_USER_NOTIF, Linux 5.0): %s\n", strerror(errno));
		return 126;
	}
	if (syscall(SYS_pidfd_getfd, -1, -1, 0) == 0 || errno == ENOSYS) {
		fprintf(stderr, ME ": this kernel has no pidfd_getfd (Linux 5.6)\n");
		return 126;
	}
	sigemptyset(&handled);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&handled, forwarded[i]);
	sigaddset(&handled, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &handled, &old) != 0 ||
	    (sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		fprintf(stderr, ME ": setting up: %s\n", strerror(errno));
		return 126;
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, ME ": fork: %s\n", strerror(errno));
		return 126;
	}
	if (child == 0) {
		close(sv[0]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		listener = install_filter();
		send_listener(sv[1], listener, listener < 0 ? errno : 0);
		if (listener < 0)
			_exit(126);
		close(listener);
		close(sv[1]);
		execvp(argv[0], argv);
		err = errno;
		fprintf(stderr, ME ": %s: %s\n", argv[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	close(sv[1]);
	listener = recv_listener(sv[0], &err);
	close(sv[0]);
	if (listener < 0) {
		if (err)
			fprintf(stderr, ME ": cannot install the seccomp filter: %s\n",
				strerror(err));
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		if (err)
			return 126;
		exit_like(status); /* it died before it could send anything */
	}

	struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
			       { .fd = listener, .events = POLLIN } };
	while (!(main_done && !children_left)) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, ME ": poll: %s\n", strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN) {
			if (serve_one(listener, &bufs) != 0) {
				fprintf(stderr, ME ": receiving a notification: %s; "
					"fsync fails with ENOSYS from now on\n", strerror(errno));
				close(listener); /* so that no call waits forever */
				p[1].fd = -1;
			}
		} else if (p[1].revents) {
			p[1].fd = -1; /* POLLHUP: no process uses the filter any more */
		}
		if (!(p[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if ((int)si.ssi_signo == SIGCHLD)
				continue;
			if (main_done)
				exit_like(status); /* stop waiting for leftovers */
			/* From a terminal the program got it as well. */
			if (si.ssi_code != SI_KERNEL)
				kill(child, (int)si.ssi_signo);
		}
		for (;;) {
			int st;
			pid_t w = waitpid(-1, &st, WNOHANG);

			if (w == child)
				main_done = 1, status = st;
			if (w > 0)
				continue;
			children_left = !(w < 0 && errno == ECHILD);
			break;
		}
	}
	if (!main_done)
		return 126; /* poll failed */
	exit_like(status);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: synchmess-fsync-supervise [--auto | --always] "
		     "[--preload LIB] [--] PROGRAM [ARG...]\n");
}

/* Puts lib in front of LD_PRELOAD (for the programs this process runs). */
static int add_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t size = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *value = malloc(size);
	int rc;

	if (!value)
		return -1;
	snprintf(value, size, "%s%s%s", lib, old && *old ? " " : "", old ? old : "");
	rc = setenv("LD_PRELOAD", value, 1);
	free(value);
	return rc;
}

int main(int argc, char **argv)
{
	char buf[PATH_MAX];
	const char *path;
	int always = 0, i = 1, err;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--auto") == 0) {
			always = 0;
		} else if (strcmp(argv[i], "--always") == 0) {
			always = 1;
		} else if (strcmp(argv[i], "--preload") == 0 && i + 1 < argc) {
			if (add_preload(argv[++i]) != 0) {
				fprintf(stderr, ME ": LD_PRELOAD: %s\n", strerror(errno));
				return 126;
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	argv += i;
	path = find_program(argv[0], buf, sizeof buf);
	if (!path) {
		fprintf(stderr, ME ": %s: command not found\n", argv[0]);
		return 127;
	}
	if (always || program_is_static(path, 0))
		return supervise(argv);
	execvp(argv[0], argv);
	err = errno;
	fprintf(stderr, ME ": %s: %s\n", argv[0], strerror(err));
	return err == ENOENT ? 127 : 126;
}
