/* ring_stress.c - the ring under live-but-slow processes: exactly-once,
 * per-writer FIFO and content, with the daemon's sweep running.
 *
 * ring-stress SECONDS [STALL_MS] [WRITERS] [READERS]
 *
 * Forks WRITERS writer and READERS reader processes (each writes or reads
 * a random number of messages, then exits and is replaced by a new one
 * with a new id, so the pids recorded in the ring are often of processes
 * that have exited), more than this machine has cores; they call
 * sched_yield at random points.  The parent is the daemon: it sweeps
 * (shm_ring_sweep with stall bound STALL_MS and a kill(pid, 0) liveness
 * test, every millisecond) and SIGSTOPs a random child now and then for
 * less than a third of the bound after which the sweep gives up a live
 * process's record (SHM_RING_LIVE_STALLS x STALL_MS): nothing here may be
 * given up, so every message written must be read exactly once, intact,
 * and in its writer's order.  Each message carries (writer id, sequence,
 * length, checksum).  After SECONDS the writers finish, the readers drain,
 * and it prints the counts; exit 0 only if nothing was lost, duplicated,
 * reordered, garbled, and the ring never reported corruption.
 *
 * The stall bound is short (the daemon's is 65 ms) so that the windows in
 * which a slow process can lose its record to the sweep are hit within
 * seconds, not hours.  Thread safety: a single-threaded program (the
 * concurrency is between its processes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring/shm_ring.h"

#define MAX_IDS 65536u     /* writer lifetimes */
#define MAX_SEQ 256u       /* messages per writer lifetime at most */
#define MAX_LEN 200u
#define MAX_STORAGE 65536u /* small: many laps */
#define MAX_CHILDREN 64

struct shared {
  uint32_t written[MAX_IDS];        /* messages writer id wrote (OK) */
  uint8_t seen[MAX_IDS][MAX_SEQ];   /* times each message was read */
  uint64_t reads, garbled, duplicates, reordered, corrupt, writers_done;
  uint32_t draining;                /* readers: exit when the ring is empty */
};

static struct shared* sh;
static struct shm_ring ring;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t rnd(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (uint32_t)(*s >> 11);
}

static uint32_t sum_of(const unsigned char* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

static size_t make(unsigned char* buf, uint32_t id, uint32_t seq, uint64_t* rs) {
  size_t len = 16 + rnd(rs) % (MAX_LEN - 16);
  for (size_t i = 16; i < len; ++i) buf[i] = (unsigned char)(id * 31u + seq * 7u + i);
  uint32_t head[4] = {id, seq, (uint32_t)len, sum_of(buf + 16, len - 16)};
  memcpy(buf, head, sizeof head);
  return len;
}

static void writer(uint32_t id, uint64_t rs) {
  unsigned char buf[MAX_LEN];
  uint32_t n = 1 + rnd(&rs) % MAX_SEQ;
  uint32_t pid = (uint32_t)getpid();
  for (uint32_t seq = 0; seq < n; ++seq) {
    size_t len = make(buf, id, seq, &rs);
    for (;;) {
      enum shm_ring_status st = shm_ring_write(&ring, buf, len, MAX_LEN, MAX_STORAGE, pid);
      if (st == SHM_RING_OK) break;
      if (st == SHM_RING_CORRUPT) __atomic_add_fetch(&sh->corrupt, 1, __ATOMIC_SEQ_CST);
      if (st != SHM_RING_FULL && st != SHM_RING_BUSY && st != SHM_RING_CORRUPT) _exit(3);
      sched_yield();
    }
    __atomic_store_n(&sh->written[id], seq + 1, __ATOMIC_SEQ_CST);
    if (rnd(&rs) % 8 == 0) sched_yield();
  }
  _exit(0);
}

static void reader(uint64_t rs) {
  static uint32_t last[MAX_IDS]; /* this reader's last sequence + 1 per writer */
  unsigned char buf[MAX_LEN];
  uint32_t n = 1 + rnd(&rs) % 1024, pid = (uint32_t)getpid();
  for (uint32_t got = 0; got < n;) {
    size_t len = 0;
    enum shm_ring_status st = shm_ring_read(&ring, buf, sizeof buf, &len, pid);
    if (st == SHM_RING_EMPTY || st == SHM_RING_BUSY) {
      if (st == SHM_RING_EMPTY && __atomic_load_n(&sh->draining, __ATOMIC_SEQ_CST)) _exit(0);
      sched_yield();
      continue;
    }
    if (st != SHM_RING_OK) {
      __atomic_add_fetch(&sh->corrupt, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    ++got;
    __atomic_add_fetch(&sh->reads, 1, __ATOMIC_SEQ_CST);
    uint32_t head[4];
    if (len < 16) {
      __atomic_add_fetch(&sh->garbled, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    memcpy(head, buf, sizeof head);
    if (head[0] >= MAX_IDS || head[1] >= MAX_SEQ || head[2] != len || head[3] != sum_of(buf + 16, len - 16)) {
      __atomic_add_fetch(&sh->garbled, 1, __ATOMIC_SEQ_CST);
      fprintf(stderr, "ring-stress: garbled message: id %u seq %u len %u/%zu\n", head[0], head[1], head[2], len);
      continue;
    }
    if (__atomic_add_fetch(&sh->seen[head[0]][head[1]], 1, __ATOMIC_SEQ_CST) != 1) {
      __atomic_add_fetch(&sh->duplicates, 1, __ATOMIC_SEQ_CST);
      fprintf(stderr, "ring-stress: duplicate: id %u seq %u\n", head[0], head[1]);
    }
    if (head[1] + 1 <= last[head[0]]) {
      __atomic_add_fetch(&sh->reordered, 1, __ATOMIC_SEQ_CST);
      fprintf(stderr, "ring-stress: reordered: id %u seq %u after %u\n", head[0], head[1], last[head[0]] - 1);
    }
    last[head[0]] = head[1] + 1;
    if (rnd(&rs) % 8 == 0) sched_yield();
  }
  _exit(0);
}

struct child {
  pid_t pid;
  int is_writer;
  uint64_t cont_at; /* stopped until then; 0: running */
};
static struct child kids[MAX_CHILDREN];
static int nkids;

static int alive(uint32_t pid, void* ctx) {
  (void)ctx;
  return pid != 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: ring-stress SECONDS [STALL_MS] [WRITERS] [READERS]\n");
    return 2;
  }
  uint64_t seconds = strtoull(argv[1], NULL, 10);
  uint64_t stall = argc > 2 ? strtoull(argv[2], NULL, 10) : 4;
  int writers = argc > 3 ? atoi(argv[3]) : 6, readers = argc > 4 ? atoi(argv[4]) : 6;
  if (stall == 0 || writers < 1 || readers < 1 || writers + readers > MAX_CHILDREN) return 2;
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  /* The smallest ring that holds the largest record (not the daemon's
   * size): a lap takes a few hundred messages, so a record given up while
   * its process is stopped is reused before that process resumes. */
  uint64_t bytes = SHM_RING_HEADER_BYTES + ((SHM_RING_RECORD_HEADER + SHM_RING_MAX_PAYLOAD + 4095) & ~4095ull);
  void* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED || mem == MAP_FAILED || shm_ring_format(&ring, mem, bytes, MAX_LEN, MAX_STORAGE, 1, 1) != 0) {
    perror("ring-stress: mmap");
    return 1;
  }
  uint64_t rs = (uint64_t)now_ms() * 2654435761u | 1, start = now_ms(), end = start + seconds * 1000;
  uint32_t next_id = 0;
  struct shm_ring_sweep_state sweep = {0};
  uint64_t repaired_total = 0, stops = 0, last_sweep = 0;
  int stopped = 0; /* children stopped now, at most a quarter of them */
  /* Longest stop: a third of the bound after which a live process's record is given up. */
  uint64_t max_stop = SHM_RING_LIVE_STALLS * stall / 3;
  /* A stop starts at about one loop pass (0.5 ms) in stop_one_in. */
  uint32_t stop_one_in = getenv("RING_STRESS_STOP_ONE_IN") ? (uint32_t)atoi(getenv("RING_STRESS_STOP_ONE_IN")) : 1;
  if (stop_one_in == 0) stop_one_in = 1;

  for (int i = 0; i < writers + readers; ++i) kids[nkids++] = (struct child){0, i < writers, 0};
  for (;;) {
    uint64_t now = now_ms();
    int ending = now >= end;
    if (ending && !__atomic_load_n(&sh->draining, __ATOMIC_SEQ_CST)) {
      int writing = 0;
      for (int i = 0; i < nkids; ++i) writing |= kids[i].is_writer && kids[i].pid != 0;
      if (!writing) __atomic_store_n(&sh->draining, 1, __ATOMIC_SEQ_CST);
    }
    /* Reap and replace. */
    int running = 0;
    for (int i = 0; i < nkids; ++i) {
      if (kids[i].pid != 0) {
        int status;
        pid_t p = waitpid(kids[i].pid, &status, WNOHANG);
        if (p == kids[i].pid) {
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "ring-stress: child %d ended with status %#x\n", (int)p, status);
            __atomic_add_fetch(&sh->corrupt, 1, __ATOMIC_SEQ_CST);
          }
          if (kids[i].cont_at != 0) --stopped;
          kids[i].cont_at = 0;
          kids[i].pid = 0;
        }
      }
      if (kids[i].pid == 0 && !ending && (!kids[i].is_writer || next_id < MAX_IDS)) {
        uint32_t id = kids[i].is_writer ? next_id++ : 0;
        uint64_t seed = rnd(&rs) | 1;
        pid_t p = fork();
        if (p == 0) {
          prctl(PR_SET_PDEATHSIG, SIGKILL);  /* even while stopped, if this program dies */
          if (kids[i].is_writer) writer(id, seed);
          reader(seed);
        }
        if (p < 0) {
          perror("ring-stress: fork");
          return 1;
        }
        kids[i].pid = p;
      }
      if (kids[i].pid == 0 && ending && !kids[i].is_writer && __atomic_load_n(&sh->draining, __ATOMIC_SEQ_CST) &&
          shm_ring_nonempty(&ring)) {
        pid_t p = fork();  /* a reader to drain what is left */
        if (p == 0) {
          prctl(PR_SET_PDEATHSIG, SIGKILL);
          reader(rnd(&rs) | 1);
        }
        kids[i].pid = p;
      }
      running += kids[i].pid != 0;
    }
    if (ending && running == 0 && !shm_ring_nonempty(&ring)) break;
    (void)running;
    if (now > end + 60000) {
      fprintf(stderr, "ring-stress: did not drain within 60 s\n");
      for (int i = 0; i < nkids; ++i)
        if (kids[i].pid) kill(kids[i].pid, SIGKILL);
      return 1;
    }
    /* Stop children for a while (all go on once the writers are done). */
    for (int i = 0; i < nkids; ++i)
      if (kids[i].cont_at != 0 && (now >= kids[i].cont_at || ending)) {
        kill(kids[i].pid, SIGCONT);
        kids[i].cont_at = 0;
        --stopped;
      }
    if (stopped < nkids / 4 && !ending && rnd(&rs) % stop_one_in == 0) {
      int i = (int)(rnd(&rs) % (uint32_t)nkids);
      if (kids[i].pid != 0 && kids[i].cont_at == 0 && kill(kids[i].pid, SIGSTOP) == 0) {
        kids[i].cont_at = now + 1 + rnd(&rs) % max_stop;
        ++stopped;
        ++stops;
      }
    }
    if (now != last_sweep) {
      unsigned repaired = 0;
      if (shm_ring_sweep(&ring, &sweep, now, stall, 0, alive, NULL, &repaired) != SHM_RING_OK) {
        fprintf(stderr, "ring-stress: the sweep found the ring corrupt\n");
        __atomic_add_fetch(&sh->corrupt, 1, __ATOMIC_SEQ_CST);
        break;
      }
      repaired_total += repaired;
      last_sweep = now;
    }
    usleep(500);
  }
  uint64_t written = 0, lost = 0;
  for (uint32_t id = 0; id < next_id; ++id) {
    written += sh->written[id];
    for (uint32_t s = 0; s < sh->written[id]; ++s)
      if (sh->seen[id][s] == 0) {
        if (++lost <= 10) fprintf(stderr, "ring-stress: lost: id %u seq %u\n", id, s);
      }
  }
  printf("ring-stress: %llu s, stall %llu ms, %d writers + %d readers, %u writer lifetimes, %llu stops: "
         "written %llu, read %llu, lost %llu, duplicated %llu, reordered %llu, garbled %llu, corrupt %llu, "
         "repaired by the sweep %llu\n",
         (unsigned long long)seconds, (unsigned long long)stall, writers, readers, next_id,
         (unsigned long long)stops, (unsigned long long)written, (unsigned long long)sh->reads,
         (unsigned long long)lost, (unsigned long long)sh->duplicates, (unsigned long long)sh->reordered,
         (unsigned long long)sh->garbled, (unsigned long long)sh->corrupt, (unsigned long long)repaired_total);
  int ok = lost == 0 && sh->duplicates == 0 && sh->reordered == 0 && sh->garbled == 0 && sh->corrupt == 0 &&
           sh->reads == written;
  return ok ? 0 : 1;
}
