/* ring_bench.c - the ring alone against a pipe, in one run: what the fast
 * path can at best give a client (no device, no library: the ring's own
 * cost).  Usage: ring_bench [seconds per phase, default 2]
 *  1. one thread, 64-byte write+read pairs: ns per pair, ring vs pipe;
 *  2. one producer process, one consumer process, 64-byte messages:
 *     messages/s, ring vs pipe (the ring's consumer polls: an empty read
 *     yields the CPU; the pipe's blocks in read).
 * Every message carries a sequence number; the consumer checks that none
 * is lost, duplicated or reordered and the program fails if one is.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring/shm_ring.h"

#define MSG 64
#define STORAGE (1u << 20)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static struct shm_ring ring;

static void ring_setup(void) {
  uint64_t bytes = shm_ring_segment_bytes(STORAGE);
  void* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED || shm_ring_format(&ring, mem, bytes, 1024, STORAGE, 1, 1) != 0) {
    perror("ring");
    exit(2);
  }
}

static double pairs_ring(double secs, int* bad) {
  unsigned char out[MSG] = {0}, in[MSG];
  uint64_t n = 0;
  double start = now_s(), end = start + secs;
  while (1) {
    for (int i = 0; i < 1000; ++i, ++n) {
      memcpy(out, &n, sizeof n);
      size_t len = 0;
      if (shm_ring_write(&ring, out, MSG, 1024, STORAGE, 1) != SHM_RING_OK ||
          shm_ring_read(&ring, in, MSG, &len, 1) != SHM_RING_OK || len != MSG || memcmp(in, out, MSG))
        *bad = 1;
    }
    if (now_s() >= end) break;
  }
  return (now_s() - start) * 1e9 / n;
}

static double pairs_pipe(double secs, int* bad) {
  int p[2];
  if (pipe(p)) exit(2);
  unsigned char out[MSG] = {0}, in[MSG];
  uint64_t n = 0;
  double start = now_s(), end = start + secs;
  while (1) {
    for (int i = 0; i < 1000; ++i, ++n) {
      memcpy(out, &n, sizeof n);
      if (write(p[1], out, MSG) != MSG || read(p[0], in, MSG) != MSG || memcmp(in, out, MSG)) *bad = 1;
    }
    if (now_s() >= end) break;
  }
  close(p[0]);
  close(p[1]);
  return (now_s() - start) * 1e9 / n;
}

/* Producer: sequence numbers until killed.  Consumer: counts for secs. */
static double stream(int use_ring, double secs, int* bad) {
  int p[2];
  if (!use_ring && pipe(p)) exit(2);
  pid_t child = fork();
  if (child == 0) {
    unsigned char out[MSG] = {0};
    for (uint64_t n = 0;; ++n) {
      memcpy(out, &n, sizeof n);
      if (use_ring) {
        while (shm_ring_write(&ring, out, MSG, 1024, STORAGE, (uint32_t)getpid()) != SHM_RING_OK) sched_yield();
      } else if (write(p[1], out, MSG) != MSG) {
        _exit(1);
      }
    }
  }
  if (!use_ring) close(p[1]);
  unsigned char in[MSG];
  uint64_t expect = 0;
  double start = now_s(), end = start + secs;
  while (1) {
    for (int i = 0; i < 1000; ++i) {
      size_t len = 0;
      if (use_ring) {
        enum shm_ring_status st;
        while ((st = shm_ring_read(&ring, in, MSG, &len, 1)) != SHM_RING_OK) {
          if (st == SHM_RING_CORRUPT) *bad = 1;
          sched_yield();
        }
      } else {
        /* a pipe may return less than a message: take exactly one */
        size_t got = 0;
        while (got < MSG) {
          ssize_t r = read(p[0], in + got, MSG - got);
          if (r <= 0) exit(2);
          got += (size_t)r;
        }
        len = got;
      }
      uint64_t n;
      memcpy(&n, in, sizeof n);
      if (len != MSG || n != expect) *bad = 1;
      ++expect;
    }
    if (now_s() >= end) break;
  }
  double rate = expect / (now_s() - start);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  if (!use_ring) close(p[0]);
  return rate;
}

int main(int argc, char** argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  int bad = 0;
  ring_setup();
  double ring_pair = pairs_ring(secs, &bad), pipe_pair = pairs_pipe(secs, &bad);
  printf("1 thread, %d-byte write+read pair: ring %.0f ns, pipe %.0f ns: ring/pipe %.3fx (goal <= 0.5x, stretch 0.25x)\n",
         MSG, ring_pair, pipe_pair, ring_pair / pipe_pair);
  ring_setup();
  double ring_rate = stream(1, secs, &bad), pipe_rate = stream(0, secs, &bad);
  printf("1 producer + 1 consumer process, %d-byte messages: ring %.0f msgs/s, pipe %.0f msgs/s: ring/pipe %.2fx (goal >= 5x)\n",
         MSG, ring_rate, pipe_rate, ring_rate / pipe_rate);
  printf("%s\n", bad ? "FAILED: a message was lost, duplicated, reordered or corrupted" : "every message read exactly once, in order");
  return bad ? 1 : 0;
}
