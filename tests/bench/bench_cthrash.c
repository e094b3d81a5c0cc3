/* bench_cthrash: allocator-induced false sharing (cache-thrash / cache-scratch).
 *
 * Usage: bench_cthrash [scale] [mode] [threads]   (defaults: 1.0, all, 2 threads)
 *   mode  thrash | scratch | all
 *
 *   thrash   each thread repeatedly mallocs a small object, writes every byte of
 *            it WRITES times, checks it and frees it. An allocator that hands
 *            neighbouring bytes of one cache line to different threads makes the
 *            writes fight over that line.
 *   scratch  the main thread allocates one small object per thread back to back
 *            (so they likely share a cache line) and hands them out; each thread
 *            writes its object, frees it, then does the thrash loop. An allocator
 *            that reuses the freed object for the thread's next malloc keeps the
 *            false sharing alive for the whole run.
 *
 * The last pattern written is checked before each free; a mismatch exits with
 * status 3. Prints ns per object lifetime (malloc + writes + free).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define OBJ_SIZE 8
#define WRITES 100 /* passes over each object's bytes */

struct task {
  int id;
  size_t iters;
  unsigned char *first; /* scratch: object allocated by the main thread */
};

/* Writes every byte WRITES times through a volatile pointer, then checks the
 * bytes hold the last pass's values. Returns 0 when the check fails. */
static int scribble(unsigned char *obj, unsigned seed) {
  volatile unsigned char *p = obj;
  for (unsigned w = 0; w < WRITES; w++)
    for (unsigned k = 0; k < OBJ_SIZE; k++) p[k] = (unsigned char)(seed + w + k);
  for (unsigned k = 0; k < OBJ_SIZE; k++)
    if (p[k] != (unsigned char)(seed + WRITES - 1 + k)) return 0;
  return 1;
}

static void corrupt(int id) {
  fprintf(stderr, "bench_cthrash: CORRUPTION in thread %d\n", id);
  exit(3);
}

static void *worker(void *arg) {
  struct task *t = arg;
  if (t->first) {
    if (!scribble(t->first, (unsigned)t->id)) corrupt(t->id);
    free(t->first);
  }
  for (size_t i = 0; i < t->iters; i++) {
    unsigned char *p = malloc(OBJ_SIZE);
    if (!p) {
      fprintf(stderr, "bench_cthrash: malloc failed\n");
      exit(2);
    }
    if (!scribble(p, (unsigned)(t->id * 31 + i))) corrupt(t->id);
    free(p);
  }
  return NULL;
}

static double run(int scratch, int nthreads, size_t iters) {
  pthread_t tid[nthreads];
  struct task task[nthreads];
  for (int i = 0; i < nthreads; i++) {
    task[i] = (struct task){.id = i, .iters = iters, .first = NULL};
    if (scratch && !(task[i].first = malloc(OBJ_SIZE))) exit(2);
  }
  double t0 = now_sec();
  for (int i = 0; i < nthreads; i++)
    if (pthread_create(&tid[i], NULL, worker, &task[i]) != 0) {
      fprintf(stderr, "bench_cthrash: pthread_create failed\n");
      exit(2);
    }
  for (int i = 0; i < nthreads; i++) pthread_join(tid[i], NULL);
  return now_sec() - t0;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  const char *mode = argc > 2 ? argv[2] : "all";
  int nthreads = argc > 3 ? atoi(argv[3]) : 2;
  if (scale <= 0) scale = 1.0;
  if (nthreads < 1 || nthreads > 256) nthreads = 2;
  int all = strcmp(mode, "all") == 0;
  if (!all && strcmp(mode, "thrash") != 0 && strcmp(mode, "scratch") != 0) {
    fprintf(stderr, "bench_cthrash: unknown mode '%s' (thrash|scratch|all)\n", mode);
    return 1;
  }
  double n = 4e6 * scale;
  size_t iters = n < 1 ? 1 : (size_t)n;
  printf("bench_cthrash threads=%d", nthreads);
  if (all || strcmp(mode, "thrash") == 0) {
    double dt = run(0, nthreads, iters);
    printf(" thrash: time=%.3fs ns_per_obj=%.1f;", dt, dt * 1e9 / (double)iters);
  }
  if (all || strcmp(mode, "scratch") == 0) {
    double dt = run(1, nthreads, iters);
    printf(" scratch: time=%.3fs ns_per_obj=%.1f;", dt, dt * 1e9 / (double)iters);
  }
  printf(" check=ok\n");
  return 0;
}
