/* bench_larson: server simulation with cross-thread frees (Larson-style).
 *
 * Usage: bench_larson [scale] [threads]   (defaults: 1.0, 2 threads)
 *
 * Each worker owns an array of SLOTS blocks. One op replaces a random slot: the
 * old block is checked and freed, a new one of 16 B-1 KiB is allocated and tagged.
 * Every HANDOFF_EVERY ops the worker hands a slot's block to another worker
 * through that worker's lock-free inbox (a Treiber stack drained all at once), so
 * the block is freed by a thread other than the one that allocated it. Work runs
 * in GENERATIONS: after each one the threads exit and fresh threads take over the
 * same slots, as a server replaces its worker threads. Blocks still in slots at the
 * end are freed by the main thread.
 *
 * Block layout: word 0 = ~tag (the inbox link while handed off), word 1 = tag,
 * last 8 bytes = tag (checked from 24 B up); the tag encodes the size. A bad tag exits with status 3.
 * Prints ops/s, where an op is one malloc (each is freed exactly once).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define SLOTS 1000
#define GENERATIONS 4
#define HANDOFF_EVERY 16
#define DRAIN_EVERY 64
#define MIN_SIZE 16
#define MAX_SIZE 1024
#define SIZE_BITS 11

struct worker {
  int id;
  int nthreads;
  size_t ops; /* ops to do per generation */
  uint64_t rng;
  uint64_t serial;
  unsigned char *slot[SLOTS];
  _Atomic(unsigned char *) inbox;
  char pad[64];
};

static struct worker *workers;
static atomic_int finished; /* workers done with this generation's ops */

static uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static void corrupt(const char *where) {
  fprintf(stderr, "bench_larson: CORRUPTION detected (%s)\n", where);
  exit(3);
}

static uint64_t load_word(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static void store_word(unsigned char *p, uint64_t v) { memcpy(p, &v, sizeof v); }

static size_t tag_size(uint64_t tag) { return (size_t)(tag & ((1u << SIZE_BITS) - 1)); }

static unsigned char *new_block(struct worker *w) {
  size_t size = MIN_SIZE + xorshift64(&w->rng) % (MAX_SIZE - MIN_SIZE + 1);
  unsigned char *p = malloc(size);
  if (!p) {
    fprintf(stderr, "bench_larson: malloc(%zu) failed\n", size);
    exit(2);
  }
  uint64_t tag = ((uint64_t)w->id << 56) | (++w->serial << SIZE_BITS) | size;
  store_word(p, ~tag);
  store_word(p + size - 8, tag);
  store_word(p + 8, tag); /* last: may overlap the tail when size < 24 */
  return p;
}

/* Checks word 1 and the tail; word 0 is checked only when not used as a link. */
static void check_and_free(unsigned char *p, int check_head) {
  uint64_t tag = load_word(p + 8);
  size_t size = tag_size(tag);
  if (size < MIN_SIZE || size > MAX_SIZE) corrupt("size field");
  if (size >= 24 && load_word(p + size - 8) != tag) corrupt("tail tag");
  if (check_head && load_word(p) != ~tag) corrupt("head tag");
  free(p);
}

static void inbox_push(struct worker *to, unsigned char *p) {
  unsigned char *old = atomic_load_explicit(&to->inbox, memory_order_relaxed);
  do {
    memcpy(p, &old, sizeof old);
  } while (!atomic_compare_exchange_weak_explicit(&to->inbox, &old, p, memory_order_release,
                                                  memory_order_relaxed));
}

static void inbox_drain(struct worker *w) {
  unsigned char *p = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
  while (p) {
    unsigned char *next;
    memcpy(&next, p, sizeof next);
    check_and_free(p, 0);
    p = next;
  }
}

static void hand_off(struct worker *w) {
  size_t j = xorshift64(&w->rng) % SLOTS;
  int target = w->id;
  if (w->nthreads > 1)
    target = (w->id + 1 + (int)(xorshift64(&w->rng) % (uint64_t)(w->nthreads - 1))) %
             w->nthreads;
  inbox_push(&workers[target], w->slot[j]);
  w->slot[j] = new_block(w);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  for (size_t n = 1; n <= w->ops; n++) {
    size_t i = xorshift64(&w->rng) % SLOTS;
    check_and_free(w->slot[i], 1);
    w->slot[i] = new_block(w);
    if (n % HANDOFF_EVERY == 0) hand_off(w);
    if (n % DRAIN_EVERY == 0) inbox_drain(w);
  }
  /* Keep freeing what the others hand us until all are done, so a slow peer
   * cannot pile up blocks in our inbox (that would make peak RSS a scheduling
   * artifact). */
  atomic_fetch_add(&finished, 1);
  while (atomic_load(&finished) < w->nthreads) {
    inbox_drain(w);
    sched_yield();
  }
  return NULL;
}

static void run_generation(int nthreads) {
  pthread_t tid[nthreads];
  atomic_store(&finished, 0);
  for (int t = 0; t < nthreads; t++)
    if (pthread_create(&tid[t], NULL, worker_main, &workers[t]) != 0) {
      fprintf(stderr, "bench_larson: pthread_create failed\n");
      exit(2);
    }
  for (int t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
}

static void setup(int nthreads, size_t ops) {
  workers = calloc((size_t)nthreads, sizeof *workers);
  if (!workers) exit(2);
  for (int t = 0; t < nthreads; t++) {
    struct worker *w = &workers[t];
    w->id = t;
    w->nthreads = nthreads;
    w->ops = ops;
    w->rng = 0x2545f4914f6cdd1dull * (uint64_t)(t + 1);
    for (size_t i = 0; i < SLOTS; i++) w->slot[i] = new_block(w);
  }
}

static void teardown(int nthreads) {
  for (int t = 0; t < nthreads; t++) inbox_drain(&workers[t]);
  for (int t = 0; t < nthreads; t++)
    for (size_t i = 0; i < SLOTS; i++) check_and_free(workers[t].slot[i], 1);
  free(workers);
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  int nthreads = argc > 2 ? atoi(argv[2]) : 2;
  if (scale <= 0) scale = 1.0;
  if (nthreads < 1 || nthreads > 256) nthreads = 2;
  double per_gen = 1.8e7 * scale / GENERATIONS;
  size_t ops = per_gen < 1 ? 1 : (size_t)per_gen;

  double t0 = now_sec();
  setup(nthreads, ops);
  for (int g = 0; g < GENERATIONS; g++) run_generation(nthreads);
  teardown(nthreads);
  double dt = now_sec() - t0;

  size_t handoffs = ops / HANDOFF_EVERY;
  size_t total = (size_t)nthreads * (SLOTS + GENERATIONS * (ops + handoffs));
  printf("bench_larson threads=%d ops=%zu time=%.3fs ops_per_sec=%.0f check=ok\n", nthreads,
         total, dt, (double)total / dt);
  return 0;
}
