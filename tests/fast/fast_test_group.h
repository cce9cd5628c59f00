/* fast_test_group.h - for the fast path's live-daemon tests (fast_check.c,
 * attacks/fast_attack.c): install group d through the master under devdir
 * and open its device O_RDWR, waiting up to 10 s for it to appear (as the
 * module's own clients do).  Returns the fd, or -1 with errno set and
 * *what naming the step that failed; each caller reports it its own way.
 * Not thread-safe only in that it uses errno; no state. */
#ifndef SYNCHMESS_FAST_TEST_GROUP_H
#define SYNCHMESS_FAST_TEST_GROUP_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "synchmess_interface.h"

static inline double fast_test_now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static inline int fast_test_open_group(const char* devdir, unsigned d, const char** what) {
  char path[300];
  snprintf(path, sizeof path, "%s/synchmess", devdir);
  int master = open(path, O_RDONLY);
  if (master < 0) return *what = "open the master", -1;
  struct group_t g;
  memset(&g, 0, sizeof g);
  g.descriptor = d;
  int r = ioctl(master, IOCTL_INSTALL_GROUP, &g), e = errno;
  close(master);
  if (r != 0) return errno = e, *what = "install the group", -1;
  snprintf(path, sizeof path, "%s/synchmess%u", devdir, d);
  int fd = -1;
  for (double end = fast_test_now_s() + 10; fd < 0 && fast_test_now_s() < end;) {
    fd = open(path, O_RDWR);
    if (fd < 0) usleep(1000);
  }
  if (fd < 0) *what = "open the group's device";
  return fd;
}

#endif
