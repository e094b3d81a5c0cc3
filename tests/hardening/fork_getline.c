/* fork_getline.c - fork while threads hold stdio locks and grow their line
 * buffers into the large tier (issue 16, the shape of glibc's
 * tst-malloc-fork-deadlock, glibc bug 19431).
 *
 * For SECONDS: 4 threads fork in a loop (each child allocates and frees a
 * few large blocks and _exits), 8 threads read lines with getline() from
 * pipes fed by 8 writer threads (write(2), no stdio), lines of 1 B to
 * 256 KiB, so getline's realloc takes the large tier while the reader holds
 * its FILE lock; the buffer is dropped every 16 lines so the chain starts
 * again from a pool block. A thread calls fflush(NULL) in a loop: it holds
 * glibc's stdio list lock while it waits for each FILE lock. A prepare
 * handler that holds something a reader's realloc waits for closes the
 * cycle fork -> list lock -> FILE lock -> realloc -> fork.
 *
 * The scenario runs in a supervised child (supervise.h): a deadlock is a
 * "hung" failure (exit 2), any wrong line or failed child exit 1.
 *
 * usage: fork_getline [SECONDS]   (default 3) */
#include "supervise.h"

#include <pthread.h>
#include <stdatomic.h>

#define FORKERS 4
#define READERS 8
#define CHILD_WAIT_S 10

static double run_secs = 3;
static atomic_int stop;
static atomic_long forks, lines, big_lines, flushes;

/* line i of a stream: its length (a third of them above 64 KiB) and bytes */
static size_t line_len(uint64_t i) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  switch (x % 3) {
  case 0:
    return 1 + x % 200;
  case 1:
    return 65537 + (x >> 8) % (192 * 1024);
  default:
    return 1 + (x >> 8) % 40000;
  }
}
static char line_byte(uint64_t i, size_t j) {
  return (char)('a' + (i * 7 + j) % 26);
}

struct chan {
  int rfd, wfd;
  unsigned id;
};

static void *writer(void *arg) {
  struct chan *c = arg;
  char *buf = malloc(300 * 1024);
  if (buf == NULL) {
    hard_fail("writer %u: malloc", c->id);
    return NULL;
  }
  for (uint64_t i = 0; !atomic_load(&stop); i++) {
    size_t n = line_len(i + c->id * 1000003ull);
    for (size_t j = 0; j < n; j++)
      buf[j] = line_byte(i, j);
    buf[n] = '\n';
    size_t off = 0;
    while (off < n + 1) {
      ssize_t w = write(c->wfd, buf + off, n + 1 - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        hard_fail("writer %u: write: %s", c->id, strerror(errno));
        atomic_store(&stop, 1);
        break;
      }
      off += (size_t)w;
    }
  }
  free(buf);
  close(c->wfd);
  return NULL;
}

static void *reader(void *arg) {
  struct chan *c = arg;
  FILE *in = fdopen(c->rfd, "r");
  if (in == NULL) {
    hard_fail("reader %u: fdopen", c->id);
    return NULL;
  }
  char *line = NULL;
  size_t cap = 0;
  long nread = 0, nbig = 0;
  for (uint64_t i = 0;; i++) {
    ssize_t n = getline(&line, &cap, in);
    if (n < 0) break;
    size_t want = line_len(i + c->id * 1000003ull);
    int ok = (size_t)n == want + 1 && line[want] == '\n';
    for (size_t j = 0; ok && j < want; j += 997)
      ok = line[j] == line_byte(i, j);
    if (ok && want > 0) ok = line[want - 1] == line_byte(i, want - 1);
    if (!ok) {
      hard_fail("reader %u: line %llu is wrong (length %zd, want %zu)", c->id,
                (unsigned long long)i, n, want + 1);
      break;
    }
    nread++;
    nbig += want > 65536;
    if (i % 16 == 15) { /* start the realloc chain again from a small block */
      free(line);
      line = NULL;
      cap = 0;
    }
  }
  free(line);
  fclose(in);
  atomic_fetch_add(&lines, nread);
  atomic_fetch_add(&big_lines, nbig);
  return NULL;
}

static void *forker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  hard_block_sigchld();
  while (!atomic_load(&stop)) {
    pid_t pid = fork();
    if (pid < 0) {
      hard_fail("forker %u: fork: %s", id, strerror(errno));
      hard_sleep_ms(5);
      continue;
    }
    if (pid == 0) {
      /* the child's large tier must work: allocate, grow, free */
      char *p = malloc(200 * 1024);
      if (p == NULL) _exit(3);
      memset(p, 1, 200 * 1024);
      char *q = realloc(p, 400 * 1024);
      if (q == NULL || q[199 * 1024] != 1) _exit(4);
      free(q);
      _exit(0);
    }
    atomic_fetch_add(&forks, 1);
    int status = 0;
    pid_t w = hard_wait_bounded(pid, &status, CHILD_WAIT_S);
    if (w == 0)
      hard_fail("forker %u: child still running after %d s (deadlock in the child)", id,
                CHILD_WAIT_S);
    else if (w != pid)
      hard_fail("forker %u: waitpid: %s", id, strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      hard_fail("forker %u: child status %#x", id, status);
  }
  return NULL;
}

static int scenario(void *arg) {
  (void)arg;
  signal(SIGPIPE, SIG_IGN); /* a reader that stops early fails its writer, not the run */
  struct chan ch[READERS];
  pthread_t wt[READERS], rt[READERS], ft[FORKERS];
  for (unsigned i = 0; i < READERS; i++) {
    int fds[2];
    if (pipe(fds) != 0) {
      printf("FAIL: pipe: %s\n", strerror(errno));
      return 1;
    }
    ch[i] = (struct chan){fds[0], fds[1], i};
  }
  FILE *sink = fopen("/dev/null", "w"); /* a stream with data for fflush(NULL) */
  for (unsigned i = 0; i < READERS; i++)
    if (pthread_create(&wt[i], NULL, writer, &ch[i]) != 0 ||
        pthread_create(&rt[i], NULL, reader, &ch[i]) != 0) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  for (uintptr_t i = 0; i < FORKERS; i++)
    if (pthread_create(&ft[i], NULL, forker, (void *)i) != 0) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  double end = hard_now() + run_secs;
  while (hard_now() < end && !atomic_load(&stop)) {
    fprintf(sink, "%ld\n", atomic_load(&flushes));
    fflush(NULL);
    atomic_fetch_add(&flushes, 1);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < FORKERS; i++)
    pthread_join(ft[i], NULL);
  for (int i = 0; i < READERS; i++) {
    pthread_join(wt[i], NULL);
    pthread_join(rt[i], NULL);
  }
  fclose(sink);
  fprintf(stderr, "forks %ld, lines %ld (%ld above 64 KiB), fflush(NULL) %ld\n",
          atomic_load(&forks), atomic_load(&lines), atomic_load(&big_lines),
          atomic_load(&flushes));
  if (atomic_load(&forks) < FORKERS) hard_fail("only %ld forks", atomic_load(&forks));
  if (atomic_load(&big_lines) < READERS) hard_fail("only %ld long lines", atomic_load(&big_lines));
  return hard_failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1) run_secs = atof(argv[1]);
  hard_check_preload();
  int rc = hard_supervise(scenario, NULL, run_secs + 30, "fork_getline scenario");
  printf("fork_getline: %d forking threads, %d getline threads (lines up to 256 KiB), "
         "fflush(NULL) loop: %s\n",
         FORKERS, READERS, rc == SUP_OK ? "ok" : rc == SUP_HUNG ? "HUNG" : "FAILED");
  return rc;
}
