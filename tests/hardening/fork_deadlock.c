/* fork_deadlock.c - fork while other threads hold stdio locks and allocate,
 * in the style of glibc's tst-malloc-fork-deadlock.
 *
 * For a few seconds: 4 threads fork repeatedly (each child allocates and
 * frees, uses stdio on streams of its own, and _exits), 8 threads read
 * lines with getline() (4 from a file, 4 from pipes they feed themselves),
 * checking every line and allocating between lines, while the main thread
 * calls fflush(NULL) in a loop, which takes every stream's lock. A child
 * that deadlocks on a lock inherited in the locked state dies of its own
 * alarm after 10 s, and its parent thread also kills it after 15 s; either
 * is a failure, as is any corrupted line or block.
 *
 * usage: fork_deadlock [SECONDS]   (default 5) */
#include "hard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define FORKERS 4
#define READERS 8
#define LINES 1000
#define PIPE_BATCH 40
#define CHILD_ALARM_S 10
#define CHILD_WAIT_S 15

static atomic_int stop;
static atomic_long forks, child_bad, child_hung, lines_read, fflushes;
static char path[] = "/tmp/pm-hard-fork-deadlock-XXXXXX";

static size_t line_len(unsigned i) {
  return (size_t)(i * 37u) % 300 + 1;
}
static char line_char(unsigned i, size_t j) {
  return (char)('a' + (i + j) % 26);
}

static int line_ok(const char *s, ssize_t n, unsigned i) {
  size_t len = line_len(i);
  if (n != (ssize_t)len + 1 || s[len] != '\n') return 0;
  for (size_t j = 0; j < len; j++)
    if (s[j] != line_char(i, j)) return 0;
  return 1;
}

static void write_line(FILE *f, unsigned i) {
  size_t len = line_len(i);
  for (size_t j = 0; j < len; j++)
    fputc(line_char(i, j), f);
  fputc('\n', f);
}

/* a little malloc/free traffic: a ring of blocks with a check byte */
struct ring {
  unsigned char *p[32];
  size_t n[32];
  uint64_t x;
};

static int ring_step(struct ring *r) {
  unsigned i = (unsigned)(hard_rand(&r->x) % 32);
  int ok = 1;
  if (r->p[i] != NULL) {
    ok = r->p[i][0] == (unsigned char)i && r->p[i][r->n[i] - 1] == (unsigned char)(i + 1);
    free(r->p[i]);
  }
  size_t n = 2 + (size_t)(r->x >> 20) % ((r->x >> 8) % 16 == 0 ? 200000 : 2000);
  r->p[i] = malloc(n);
  r->n[i] = n;
  if (r->p[i] == NULL) return 0;
  r->p[i][0] = (unsigned char)i;
  r->p[i][n - 1] = (unsigned char)(i + 1);
  return ok;
}

static void ring_free(struct ring *r) {
  for (int i = 0; i < 32; i++)
    free(r->p[i]);
}

/* the child: allocations and stdio of its own, then _exit */
static int child_work(unsigned seed) {
  struct ring r = {.x = 0x9E3779B97F4A7C15ull ^ seed};
  for (int k = 0; k < 200; k++)
    if (!ring_step(&r)) return 0;
  ring_free(&r);
  FILE *f = fopen("/dev/null", "w");
  if (f == NULL) return 0;
  for (unsigned i = 0; i < 20; i++)
    write_line(f, i);
  if (fclose(f) != 0) return 0;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m == NULL) return 0;
  for (unsigned i = 0; i < 50; i++)
    write_line(m, i);
  if (fclose(m) != 0 || buf == NULL) return 0;
  size_t want = 0;
  for (unsigned i = 0; i < 50; i++)
    want += line_len(i) + 1;
  int ok = len == want && line_ok(buf, (ssize_t)line_len(0) + 1, 0);
  free(buf);
  return ok;
}

static void *forker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  unsigned n = 0;
  while (!atomic_load(&stop)) {
    pid_t pid = fork();
    if (pid < 0) {
      hard_fail("forker %u: fork: %s", id, strerror(errno));
      hard_sleep_ms(10);
      continue;
    }
    if (pid == 0) {
      signal(SIGALRM, SIG_DFL);
      alarm(CHILD_ALARM_S);
      _exit(child_work(id * 100000 + n) ? 0 : 3);
    }
    n++;
    atomic_fetch_add(&forks, 1);
    /* bounded wait: poll, then kill */
    int status = 0;
    double deadline = hard_now() + CHILD_WAIT_S;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && hard_now() < deadline)
      hard_sleep_ms(1);
    if (w == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      hard_fail("forker %u: child %d still running after %d s (deadlock?)", id, (int)pid,
                CHILD_WAIT_S);
      atomic_fetch_add(&child_hung, 1);
    } else if (w != pid) {
      hard_fail("forker %u: waitpid: %s", id, strerror(errno));
      atomic_fetch_add(&child_bad, 1);
    } else if (WIFSIGNALED(status)) {
      hard_fail("forker %u: child killed by signal %d%s", id, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (its alarm: deadlock in the child)" : "");
      atomic_fetch_add(WTERMSIG(status) == SIGALRM ? &child_hung : &child_bad, 1);
    } else if (WEXITSTATUS(status) != 0) {
      hard_fail("forker %u: child exited with %d", id, WEXITSTATUS(status));
      atomic_fetch_add(&child_bad, 1);
    }
  }
  return NULL;
}

/* reads the file (even ids) or a pipe it feeds itself (odd ids) */
static void *reader(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  struct ring r = {.x = 0x2545F4914F6CDD1Dull * (id + 1)};
  char *line = NULL;
  size_t cap = 0;
  long nread = 0;
  int bad = 0;
  if (id % 2 == 0) {
    FILE *f = fopen(path, "r");
    unsigned i = 0;
    while (f != NULL && !atomic_load(&stop) && !bad) {
      ssize_t n = getline(&line, &cap, f);
      if (n < 0) {
        if (i != LINES) bad = 1, hard_fail("reader %u: EOF after %u lines", id, i);
        /* a new FILE now and then, else rewind */
        if (nread % 3 == 0) {
          fclose(f);
          f = fopen(path, "r");
        } else {
          rewind(f);
        }
        i = 0;
        continue;
      }
      if (!line_ok(line, n, i)) bad = 1, hard_fail("reader %u: line %u is wrong", id, i);
      i++;
      nread++;
      if (!ring_step(&r)) bad = 1, hard_fail("reader %u: block corrupted", id);
      if (nread % 64 == 0) {
        free(line);
        line = NULL;
        cap = 0;
      }
    }
    if (f == NULL)
      hard_fail("reader %u: fopen: %s", id, strerror(errno));
    else
      fclose(f);
  } else {
    int fds[2];
    if (pipe(fds) != 0) {
      hard_fail("reader %u: pipe: %s", id, strerror(errno));
      return NULL;
    }
    FILE *in = fdopen(fds[0], "r"), *out = fdopen(fds[1], "w");
    if (in == NULL || out == NULL) {
      hard_fail("reader %u: fdopen failed", id);
      return NULL;
    }
    unsigned base = id;
    while (!atomic_load(&stop) && !bad) {
      /* at most ~12 KB per batch: the write never fills the pipe */
      for (unsigned k = 0; k < PIPE_BATCH; k++)
        write_line(out, (base + k) % LINES);
      if (fflush(out) != 0) {
        bad = 1, hard_fail("reader %u: fflush of the pipe failed", id);
        break;
      }
      for (unsigned k = 0; k < PIPE_BATCH && !bad; k++) {
        ssize_t n = getline(&line, &cap, in);
        if (!line_ok(line, n, (base + k) % LINES))
          bad = 1, hard_fail("reader %u: pipe line %u is wrong", id, (base + k) % LINES);
        nread++;
        if (!ring_step(&r)) bad = 1, hard_fail("reader %u: block corrupted", id);
        if (nread % 64 == 0) {
          free(line);
          line = NULL;
          cap = 0;
        }
      }
      base += PIPE_BATCH;
    }
    fclose(out);
    fclose(in);
  }
  free(line);
  ring_free(&r);
  if (nread == 0) hard_fail("reader %u: read no line", id);
  atomic_fetch_add(&lines_read, nread);
  return NULL;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 5;
  hard_check_preload();
  hard_watchdog((unsigned)secs + 40, "fork_deadlock");

  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL) {
    printf("FAIL: cannot create %s\n", path);
    return 1;
  }
  for (unsigned i = 0; i < LINES; i++)
    write_line(f, i);
  if (fclose(f) != 0) {
    printf("FAIL: cannot write %s\n", path);
    return 1;
  }
  fflush(stdout);

  FILE *sink = fopen("/dev/null", "w"); /* a stream with data for fflush(NULL) */
  pthread_t rt[READERS], ft[FORKERS];
  for (uintptr_t i = 0; i < READERS; i++)
    if (pthread_create(&rt[i], NULL, reader, (void *)i) != 0) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  for (uintptr_t i = 0; i < FORKERS; i++)
    if (pthread_create(&ft[i], NULL, forker, (void *)i) != 0) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  double end = hard_now() + secs;
  while (hard_now() < end) {
    fprintf(sink, "%ld\n", atomic_load(&fflushes));
    fflush(NULL);
    atomic_fetch_add(&fflushes, 1);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < FORKERS; i++)
    pthread_join(ft[i], NULL);
  for (int i = 0; i < READERS; i++)
    pthread_join(rt[i], NULL);
  fclose(sink);
  unlink(path);

  fprintf(stderr,
          "forks %ld, bad children %ld, hung %ld, lines read %ld, fflush(NULL) %ld\n",
          atomic_load(&forks), atomic_load(&child_bad), atomic_load(&child_hung),
          atomic_load(&lines_read), atomic_load(&fflushes));
  if (atomic_load(&forks) < FORKERS) hard_fail("only %ld forks", atomic_load(&forks));
  if (atomic_load(&fflushes) == 0) hard_fail("no fflush(NULL) done");
  int ok = hard_failures == 0;
  printf("fork_deadlock: %d forking threads, %d getline threads, fflush(NULL) loop: %s\n",
         FORKERS, READERS, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
