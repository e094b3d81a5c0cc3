/* bench_xmalloc: producer/consumer allocation (xmalloc-test style).
 *
 * Usage: bench_xmalloc [scale] [pairs]   (defaults: 1.0, 1 pair)
 *
 * Each pair is a producer thread that mallocs blocks of 16-512 B, tags them and
 * pushes them into a single-producer/single-consumer lock-free ring, and a consumer
 * thread that pops them, checks the tag and frees them. Every free is therefore a
 * free of memory allocated by another thread. A thread that finds the ring full
 * (or empty) yields the CPU. A bad tag exits with status 3.
 * Prints ops/s, where an op is one malloc plus its (remote) free.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 4096 /* power of two */
#define BATCH 32 /* items between index publications */
#define MIN_SIZE 16
#define MAX_SIZE 512

struct ring {
  _Alignas(64) _Atomic size_t head; /* next slot the consumer reads */
  _Alignas(64) _Atomic size_t tail; /* next slot the producer writes */
  _Alignas(64) unsigned char *slot[RING];
  size_t count; /* blocks to pass */
  int id;
};

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* tag = serial << 16 | size; stored at the head and the tail of the block. */
static unsigned char *make_block(uint64_t serial, size_t size) {
  unsigned char *p = malloc(size);
  if (!p) {
    fprintf(stderr, "bench_xmalloc: malloc(%zu) failed\n", size);
    exit(2);
  }
  uint64_t tag = serial << 16 | size;
  memcpy(p + size - sizeof tag, &tag, sizeof tag);
  memcpy(p, &tag, sizeof tag);
  return p;
}

static void check_and_free(unsigned char *p, uint64_t serial) {
  uint64_t head, tail;
  memcpy(&head, p, sizeof head);
  size_t size = head & 0xffff;
  if (head >> 16 != serial || size < MIN_SIZE || size > MAX_SIZE) goto bad;
  memcpy(&tail, p + size - sizeof tail, sizeof tail);
  if (tail != head) goto bad;
  free(p);
  return;
bad:
  fprintf(stderr, "bench_xmalloc: CORRUPTION in block %llu\n", (unsigned long long)serial);
  exit(3);
}

/* Both sides keep private copies of the indices and publish them every BATCH
 * items (and before waiting), so the ring itself costs little cache traffic and
 * the allocator's cross-thread free path dominates. */
static void *producer(void *arg) {
  struct ring *r = arg;
  uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)r->id;
  size_t tail = 0, head_seen = 0;
  for (size_t i = 0; i < r->count; i++) {
    size_t size = MIN_SIZE + xorshift64(&rng) % (MAX_SIZE - MIN_SIZE + 1);
    unsigned char *p = make_block(i, size);
    while (tail - head_seen >= RING) {
      atomic_store_explicit(&r->tail, tail, memory_order_release);
      head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
      if (tail - head_seen >= RING) sched_yield();
    }
    r->slot[tail++ & (RING - 1)] = p;
    if (tail % BATCH == 0) atomic_store_explicit(&r->tail, tail, memory_order_release);
  }
  atomic_store_explicit(&r->tail, tail, memory_order_release);
  return NULL;
}

static void *consumer(void *arg) {
  struct ring *r = arg;
  size_t head = 0, tail_seen = 0;
  for (size_t i = 0; i < r->count; i++) {
    while (head == tail_seen) {
      atomic_store_explicit(&r->head, head, memory_order_release);
      tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
      if (head == tail_seen) sched_yield();
    }
    unsigned char *p = r->slot[head++ & (RING - 1)];
    if (head % BATCH == 0) atomic_store_explicit(&r->head, head, memory_order_release);
    check_and_free(p, i);
  }
  return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
  if (pthread_create(t, NULL, fn, arg) != 0) {
    fprintf(stderr, "bench_xmalloc: pthread_create failed\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  int pairs = argc > 2 ? atoi(argv[2]) : 1;
  if (scale <= 0) scale = 1.0;
  if (pairs < 1 || pairs > 64) pairs = 1;
  double n = 2e7 * scale / pairs;
  size_t count = n < 1 ? 1 : (size_t)n;

  struct ring *rings = aligned_alloc(64, sizeof(struct ring) * (size_t)pairs);
  pthread_t *tid = malloc(sizeof(pthread_t) * 2 * (size_t)pairs);
  if (!rings || !tid) return 2;
  double t0 = now_sec();
  for (int i = 0; i < pairs; i++) {
    memset(&rings[i], 0, sizeof rings[i]);
    rings[i].count = count;
    rings[i].id = i;
    start(&tid[2 * i], consumer, &rings[i]);
    start(&tid[2 * i + 1], producer, &rings[i]);
  }
  for (int i = 0; i < 2 * pairs; i++) pthread_join(tid[i], NULL);
  double dt = now_sec() - t0;
  size_t total = count * (size_t)pairs;
  printf("bench_xmalloc pairs=%d ops=%zu time=%.3fs ops_per_sec=%.0f check=ok\n", pairs, total,
         dt, (double)total / dt);
  free(tid);
  free(rings);
  return 0;
}
