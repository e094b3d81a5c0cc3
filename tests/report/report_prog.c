/* report_prog.c - a small program with known allocation counts, run under
 * the preload by the report tests (tests/report/report_tests.sh).
 *
 *   report_prog count N          N mallocs of 1..1000 bytes, frees 3 of 4
 *   report_prog large N SIZE     N mallocs of SIZE bytes (kept 1 of 2)
 *   report_prog frag N           N mallocs of 64 bytes, frees 15 of 16
 *   report_prog remote N         N mallocs in main, freed by a second thread
 *   report_prog aligned N        N posix_memalign(4096, 100)
 *   report_prog sparse N         N mallocs of 64 bytes, frees all but 1 in 1000,
 *                                then N/4 mallocs of 256 bytes (kept), then 2N
 *                                mallocs of 48 bytes each freed at once (the
 *                                survivors outlive two turnovers of the heap)
 *   report_prog fork N           N mallocs of 100 bytes (kept), then fork without
 *                                exec: the child makes N/2 mallocs of 200 bytes
 *                                and exits; the parent waits for it
 *   report_prog signal N         N mallocs of 64 bytes, raise(SIGUSR2) (run it
 *                                with POOLMALLOC_STATS_SIGNAL=USR2), N more
 *
 * Every mode prints the number of allocation calls it made on stdout. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void **blocks;
static size_t nblocks;

static void *free_all(void *arg) {
  (void)arg;
  for (size_t i = 0; i < nblocks; i++)
    free(blocks[i]);
  return NULL;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "report_prog: out of memory\n");
    exit(1);
  }
  memset(p, 0xa5, n < 64 ? n : 64);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: report_prog "
                    "count|large|frag|remote|aligned|sparse|fork|signal N [SIZE]\n");
    return 2;
  }
  const char *mode = argv[1];
  size_t n = strtoull(argv[2], NULL, 10);
  /* the array of pointers comes from mmap-backed calloc only if huge; it is
   * one more allocation, counted below */
  blocks = calloc(n ? n : 1, sizeof *blocks);
  if (blocks == NULL) return 1;
  nblocks = n;
  size_t calls = n + 1;
  if (strcmp(mode, "count") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(1 + (i * 37) % 1000);
    for (size_t i = 0; i < n; i++)
      if (i % 4) free(blocks[i]);
  } else if (strcmp(mode, "large") == 0) {
    size_t size = argc > 3 ? strtoull(argv[3], NULL, 10) : 40000;
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(size);
    for (size_t i = 0; i < n; i += 2)
      free(blocks[i]);
  } else if (strcmp(mode, "frag") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(64);
    for (size_t i = 0; i < n; i++)
      if (i % 16) free(blocks[i]);
  } else if (strcmp(mode, "remote") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(48);
    pthread_t t;
    if (pthread_create(&t, NULL, free_all, NULL) != 0) return 1;
    pthread_join(t, NULL);
  } else if (strcmp(mode, "sparse") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(64);
    for (size_t i = 0; i < n; i++)
      if (i % 1000) free(blocks[i]);
    for (size_t i = 0; i < n / 4; i++)
      blocks[i] = xmalloc(256); /* the kept 64 B blocks leak */
    for (size_t i = 0; i < 2 * n; i++)
      free(xmalloc(48)); /* a class of its own */
    calls += n / 4 + 2 * n;
  } else if (strcmp(mode, "fork") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(100);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      for (size_t i = 0; i < n / 2; i++)
        blocks[i] = xmalloc(200); /* the 100 B ones stay live */
      exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return 1;
  } else if (strcmp(mode, "signal") == 0) {
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(64);
    raise(SIGUSR2);
    for (size_t i = 0; i < n; i++)
      free(blocks[i]);
    for (size_t i = 0; i < n; i++)
      blocks[i] = xmalloc(64);
    calls += n;
  } else if (strcmp(mode, "aligned") == 0) {
    for (size_t i = 0; i < n; i++)
      if (posix_memalign(&blocks[i], 4096, 100) != 0) return 1;
  } else {
    fprintf(stderr, "report_prog: unknown mode %s\n", mode);
    return 2;
  }
  printf("%zu\n", calls);
  return 0;
}
