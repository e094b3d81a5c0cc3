/* exit_threads.c - exit() while 16 threads are still allocating.
 *
 * The parent runs the child program (this one, with --child) 200 times with
 * fork + exec; every fourth run has POOLMALLOC_STATS=1 with stderr on
 * /dev/null, so poolmalloc's exit report is built while the threads still
 * allocate. The child starts 16 threads that replace checksummed blocks of
 * many sizes (a thread that finds a corrupted block _exits 5), waits until
 * each has made its first allocation, and calls exit(0) from main; an
 * atexit handler allocates meanwhile. Every child must exit with status 0 within 20 s
 * (else it is killed and the test fails).
 *
 * usage: exit_threads [RUNS]   (default 200; a quarter of that in the
 * reference run without poolmalloc, PM_HARD_EXPECT=0, which only checks the
 * test) */
#include "hard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define THREADS 16
#define CHILD_WAIT_S 20

static atomic_int started;

struct blk {
  size_t n;
  uint64_t sum;
  unsigned char data[];
};

static void corrupted(const char *what) {
  char msg[128];
  int n = snprintf(msg, sizeof msg, "FAIL: child %d: %s\n", (int)getpid(), what);
  ssize_t w = write(1, msg, (size_t)n);
  (void)w;
  _exit(5);
}

static void *allocator(void *arg) {
  uint64_t x = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1) ^ (uint64_t)getpid();
  struct blk *ring[128] = {0};
  long ops = 0;
  for (;;) {
    unsigned i = (unsigned)(hard_rand(&x) % 128);
    struct blk *b = ring[i];
    if (b != NULL) {
      if (hard_sum(b->data, b->n) != b->sum) corrupted("block corrupted");
      if ((x >> 30) % 5 == 0) {
        size_t n = (size_t)(x >> 40) % 3000;
        size_t keep = n < b->n ? n : b->n;
        uint64_t want = hard_sum(b->data, keep);
        b = realloc(b, sizeof *b + n);
        if (b == NULL || hard_sum(b->data, keep) != want) corrupted("realloc lost data");
      }
      free(b);
    }
    size_t n = (x >> 8) % 32 == 0 ? (size_t)(x >> 20) % 150000 : (size_t)(x >> 20) % 1200;
    b = (x >> 14) % 4 == 0 ? calloc(1, sizeof *b + n) : malloc(sizeof *b + n);
    if (b == NULL) corrupted("allocation failed");
    b->n = n;
    b->sum = hard_fill(b->data, n, x);
    ring[i] = b;
    if (++ops == 1) atomic_fetch_add(&started, 1);
  }
  return NULL;
}

static void at_exit_allocates(void) {
  for (int i = 0; i < 100; i++) {
    char *p = malloc((size_t)(i * 37 % 2000) + 1);
    if (p == NULL) corrupted("malloc in atexit failed");
    p[0] = (char)i;
    free(p);
  }
}

static int child(void) {
  hard_check_preload();
  atexit(at_exit_allocates);
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  for (uintptr_t i = 0; i < THREADS; i++)
    if (pthread_create(&t, &a, allocator, (void *)i) != 0) {
      printf("FAIL: child: pthread_create\n");
      return 1;
    }
  double until = hard_now() + 10;
  while (atomic_load(&started) < THREADS && hard_now() < until)
    hard_sleep_ms(1);
  if (atomic_load(&started) < THREADS) {
    printf("FAIL: child: only %d threads got going in 10 s\n", atomic_load(&started));
    return 3;
  }
  exit(0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
  int runs = argc > 1 ? atoi(argv[1]) : 200;
  if (!hard_check_preload() && getenv("PM_HARD_EXPECT") != NULL) runs /= 4;
  hard_watchdog(100, "exit_threads");
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    printf("FAIL: readlink /proc/self/exe\n");
    return 1;
  }
  self[len] = 0;
  fflush(stdout);
  /* SIGCHLD blocked: the bounded wait sleeps in sigtimedwait */
  hard_block_sigchld();

  int bad = 0, stats_runs = 0;
  double t0 = hard_now();
  for (int r = 0; r < runs && bad < 5; r++) {
    int with_stats = r % 4 == 3;
    stats_runs += with_stats;
    pid_t pid = fork();
    if (pid < 0) {
      hard_fail("fork: %s", strerror(errno));
      bad++;
      continue;
    }
    if (pid == 0) {
      hard_unblock_signals();
      if (with_stats) {
        setenv("POOLMALLOC_STATS", "1", 1);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
      }
      execl(self, self, "--child", (char *)NULL);
      _exit(127);
    }
    int status = 0;
    pid_t w = hard_wait_bounded(pid, &status, CHILD_WAIT_S);
    if (w == 0) {
      hard_fail("run %d%s: child still running after %d s (hang at exit?)", r,
                with_stats ? " (POOLMALLOC_STATS=1)" : "", CHILD_WAIT_S);
      bad++;
    } else if (w != pid) {
      hard_fail("run %d: waitpid: %s", r, strerror(errno));
      bad++;
    } else if (WIFSIGNALED(status)) {
      hard_fail("run %d%s: child killed by signal %d", r,
                with_stats ? " (POOLMALLOC_STATS=1)" : "", WTERMSIG(status));
      bad++;
    } else if (WEXITSTATUS(status) != 0) {
      hard_fail("run %d%s: child exited with %d", r,
                with_stats ? " (POOLMALLOC_STATS=1)" : "", WEXITSTATUS(status));
      bad++;
    }
  }
  fprintf(stderr, "%d runs (%d with POOLMALLOC_STATS=1) in %.1f s, %d failed\n", runs,
          stats_runs, hard_now() - t0, bad);
  printf("exit_threads: exit(0) with %d allocating threads (every 4th run with the exit "
         "report): %s\n",
         THREADS, hard_failures == 0 ? "ok" : "FAILED");
  return hard_failures == 0 ? 0 : 1;
}
