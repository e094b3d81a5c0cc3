/* fork_spawn.c - fork(), system(), popen() and posix_spawn() from a parent
 * whose 8 other threads keep allocating and freeing.
 *
 * 500 forks: each child allocates, checks and frees blocks of several sizes
 * (also from a thread of its own) and _exits 0; the parent waits for each
 * with a bounded poll and kills it after 20 s (a failure). Then system()
 * (exit statuses 0 and 7), popen() of `echo` (the line read back must be
 * right, pclose must return 0) and posix_spawn()/posix_spawnp() of echo and
 * sh with a pipe (output and exit status checked), while the workers still
 * allocate. The children's shells run under the preload too (LD_PRELOAD is
 * inherited). The workers' blocks carry checksums, verified as they go.
 *
 * usage: fork_spawn [FORKS]   (default 500; a fifth of that in the reference
 * run without poolmalloc, PM_HARD_EXPECT=0, which only checks the test) */
#include "hard.h"

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define WORKERS 8
#define SPAWNS 20
#define CHILD_WAIT_S 20

extern char **environ;

static atomic_int stop;
static atomic_long worker_ops;

struct blk {
  size_t n;
  uint64_t sum;
  unsigned char data[];
};

static void *worker(void *arg) {
  /* a lower priority (Linux nice values are per thread), as in the
   * integration fork test: on a small loaded machine the forking thread and
   * the children still get the CPU; the workers run whenever it is idle */
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  uint64_t x = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  struct blk *ring[64] = {0};
  while (!atomic_load(&stop)) {
    unsigned i = (unsigned)(hard_rand(&x) % 64);
    if (ring[i] != NULL) {
      if (hard_sum(ring[i]->data, ring[i]->n) != ring[i]->sum)
        hard_fail("worker %u: block of %zu bytes corrupted", (unsigned)(uintptr_t)arg,
                  ring[i]->n);
      free(ring[i]);
    }
    size_t n = (x >> 8) % 16 == 0 ? (size_t)(x >> 20) % 200000 : (size_t)(x >> 20) % 1500;
    ring[i] = (x >> 12) % 4 == 0 ? calloc(1, sizeof(struct blk) + n)
                                 : malloc(sizeof(struct blk) + n);
    if (ring[i] == NULL) {
      hard_fail("worker: allocation failed");
      break;
    }
    ring[i]->n = n;
    ring[i]->sum = hard_fill(ring[i]->data, n, x);
    atomic_fetch_add(&worker_ops, 1);
  }
  for (int i = 0; i < 64; i++)
    free(ring[i]);
  return NULL;
}

/* a block's first and last bytes carry a pattern (cheap: the children
 * must stay short on a loaded machine) */
static void mark(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i = i == 63 && n > 128 ? n - 64 : i + 1)
    p[i] = (unsigned char)(seed * 7 + i);
}

static int marked(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i = i == 63 && n > 128 ? n - 64 : i + 1)
    if (p[i] != (unsigned char)(seed * 7 + i)) return 0;
  return 1;
}

static int child_allocs(void) {
  /* the large ones go to jemalloc under poolmalloc; the children touch few
   * of their pages (page faults are slow on a loaded VM) */
  static const size_t sizes[] = {1, 16, 100, 1000, 4000, 40000, 300000, 700000};
  enum { N = sizeof sizes / sizeof sizes[0] };
  unsigned char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(sizes[i]);
    if (p[i] == NULL) return 0;
    mark(p[i], sizes[i], (unsigned)i);
  }
  for (int i = 0; i < N; i++) {
    if (!marked(p[i], sizes[i], (unsigned)i)) return 0;
    unsigned char *q =
        realloc(p[i], sizes[i] < 100000 ? sizes[i] * 2 + 1 : sizes[i] + 4097);
    if (q == NULL || q[0] != (unsigned char)(i * 7)) return 0;
    free(q);
  }
  return 1;
}

static void *child_thread(void *arg) {
  return child_allocs() ? arg : NULL;
}

/* waits for pid for at most secs; returns its status, or -1 after killing
 * it. SIGCHLD is blocked in every thread (main() blocks it before creating
 * any), so sigtimedwait wakes up as soon as a child exits. */
static int wait_bounded(pid_t pid, double secs, const char *what) {
  int status = 0;
  pid_t w = hard_wait_bounded(pid, &status, secs);
  if (w == pid) return status;
  if (w == 0)
    hard_fail("%s: child %d still running after %.0f s (deadlock?)", what, (int)pid,
              secs);
  else
    hard_fail("%s: waitpid: %s", what, strerror(errno));
  return -1;
}

static void check_exit(int status, int want, const char *what) {
  if (status == -1) return; /* wait_bounded reported it */
  if (!WIFEXITED(status))
    hard_fail("%s: killed by signal %d", what,
              WIFSIGNALED(status) ? WTERMSIG(status) : -1);
  else if (WEXITSTATUS(status) != want)
    hard_fail("%s: exit status %d, want %d", what, WEXITSTATUS(status), want);
}

/* system() and pclose() return -1 when they could not run or wait */
static void check_status(int status, int want, const char *what) {
  if (status == -1)
    hard_fail("%s: returned -1: %s", what, strerror(errno));
  else
    check_exit(status, want, what);
}

static int do_forks(int forks) {
  int done = 0;
  for (int f = 0; f < forks; f++) {
    /* let the workers get into the allocator */
    long target = atomic_load(&worker_ops) + 20;
    double until = hard_now() + 1;
    while (atomic_load(&worker_ops) < target && hard_now() < until)
      ;
    pid_t pid = fork();
    if (pid < 0) {
      hard_fail("fork %d: %s", f, strerror(errno));
      continue;
    }
    if (pid == 0) {
      signal(SIGALRM, SIG_DFL);
      alarm(CHILD_WAIT_S - 5);
      int ok = child_allocs();
      pthread_t t;
      void *res = NULL;
      if (ok && pthread_create(&t, NULL, child_thread, &ok) == 0) pthread_join(t, &res);
      _exit(ok && res != NULL ? 0 : 3);
    }
    char what[32];
    snprintf(what, sizeof what, "fork %d", f);
    check_exit(wait_bounded(pid, CHILD_WAIT_S, what), 0, what);
    done++;
  }
  return done;
}

/* reads all of fd (at most cap-1 bytes) with a time limit */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t len = 0;
  ssize_t n;
  while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = 0;
  return len;
}

static void do_spawns(void) {
  char want[64], got[128], what[64];
  for (int i = 0; i < SPAWNS; i++) {
    /* system(): the status of sh -c */
    check_status(system("exit 0"), 0, "system(exit 0)");
    check_status(system("x=$(echo hi); [ \"$x\" = hi ] && exit 7"), 7, "system(exit 7)");

    /* popen(): the line echo printed */
    snprintf(want, sizeof want, "popen line %d\n", i);
    snprintf(got, sizeof got, "echo popen line %d", i);
    FILE *p = popen(got, "r");
    if (p == NULL) {
      hard_fail("popen: %s", strerror(errno));
    } else {
      char *line = NULL;
      size_t cap = 0;
      ssize_t n = getline(&line, &cap, p);
      if (n < 0 || strcmp(line, want) != 0)
        hard_fail("popen %d: read '%s', want '%s'", i, n < 0 ? "(EOF)" : line, want);
      free(line);
      check_status(pclose(p), 0, "pclose");
    }

    /* posix_spawn of echo with stdout on a pipe */
    int fds[2];
    if (pipe(fds) != 0) {
      hard_fail("pipe: %s", strerror(errno));
      continue;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char num[16];
    snprintf(num, sizeof num, "%d", i);
    char *argv_echo[] = {"echo", "spawned", num, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "echo", &fa, NULL, argv_echo, environ);
    close(fds[1]);
    if (rc != 0) {
      hard_fail("posix_spawnp echo: %s", strerror(rc));
    } else {
      read_all(fds[0], got, sizeof got);
      snprintf(want, sizeof want, "spawned %d\n", i);
      if (strcmp(got, want) != 0) hard_fail("posix_spawnp %d: read '%s'", i, got);
      snprintf(what, sizeof what, "posix_spawnp echo %d", i);
      check_exit(wait_bounded(pid, CHILD_WAIT_S, what), 0, what);
    }
    close(fds[0]);
    posix_spawn_file_actions_destroy(&fa);

    /* posix_spawn (no path search) of sh with an exit status */
    char *argv_sh[] = {"sh", "-c", "exec 1>/dev/null; echo x; exit 3", NULL};
    rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv_sh, environ);
    if (rc != 0) {
      hard_fail("posix_spawn /bin/sh: %s", strerror(rc));
    } else {
      snprintf(what, sizeof what, "posix_spawn sh %d", i);
      check_exit(wait_bounded(pid, CHILD_WAIT_S, what), 3, what);
    }
  }
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 500;
  if (!hard_check_preload() && getenv("PM_HARD_EXPECT") != NULL) forks /= 5;
  hard_watchdog(100, "fork_spawn");
  fflush(stdout);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &chld,
                  NULL); /* for wait_bounded, inherited by the workers */

  pthread_t t[WORKERS];
  for (uintptr_t i = 0; i < WORKERS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  double t0 = hard_now();
  int done = do_forks(forks);
  double t1 = hard_now();
  do_spawns();
  double t2 = hard_now();
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(t[i], NULL);
  fprintf(stderr, "%d forks in %.1f s, %d x (2 system, popen, 2 posix_spawn) in %.1f s\n",
          done, t1 - t0, SPAWNS, t2 - t1);

  printf("fork_spawn: forks with %d allocating threads: %s\n", WORKERS,
         hard_failures == 0 && done == forks ? "ok" : "FAILED");
  printf("fork_spawn: system, popen, posix_spawn x %d: %s\n", SPAWNS,
         hard_failures == 0 ? "ok" : "FAILED");
  return hard_failures == 0 && done == forks ? 0 : 1;
}
