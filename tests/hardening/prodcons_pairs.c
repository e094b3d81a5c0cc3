/* prodcons_pairs.c - cross-thread frees at scale: N producer/consumer
 * pairs (CTest runs 2, 4 and 16).
 *
 * Each producer allocates blocks of varied sizes (mostly small, some
 * medium, a few up to 1 MiB; malloc, calloc, memalign), fills them and
 * records a checksum, and passes them through a bounded queue to its
 * consumer, which verifies, sometimes reallocs (prefix checked) and frees
 * them on its own thread. Every block freed is a remote free under
 * poolmalloc. More than a gigabyte goes through in all, with at most a few
 * thousand blocks live: the main thread samples RSS (/proc/self/statm)
 * every 20 ms and fails past 512 MiB, which catches remote frees whose
 * memory is never reused.
 *
 * usage: prodcons_pairs PAIRS BLOCKS-PER-PRODUCER */
#include "hard.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

#define QUEUE_CAP 256
#define RSS_LIMIT_KIB (512L * 1024)

struct block {
  size_t size;
  uint64_t seed, checksum;
  unsigned char payload[];
};

struct queue {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  struct block *items[QUEUE_CAP];
  size_t head, count;
  int done;
};

struct pair {
  struct queue q;
  unsigned id;
  unsigned long blocks, consumed, bad, reallocs;
};

static atomic_int finished;

static size_t pick_size(uint64_t r) {
  unsigned k = (unsigned)(r % 256);
  if (k == 0) return (size_t)(r >> 8) % (1024 * 1024);
  if (k < 12) return (size_t)(r >> 8) % 65536;
  if (k < 48) return (size_t)(r >> 8) % 4096;
  return (size_t)(r >> 8) % 512;
}

static void *producer(void *arg) {
  struct pair *pr = arg;
  uint64_t x = 0x9E3779B97F4A7C15ull * (pr->id + 1);
  for (unsigned long i = 0; i < pr->blocks; i++) {
    uint64_t r = hard_rand(&x);
    size_t n = pick_size(r);
    struct block *b;
    switch ((r >> 40) % 8) {
    case 0:
      b = calloc(1, sizeof *b + n);
      break;
    case 1:
      b = memalign((size_t)16 << ((r >> 44) % 8), sizeof *b + n);
      break;
    default:
      b = malloc(sizeof *b + n);
      break;
    }
    if (b == NULL) {
      hard_fail("producer %u: allocation of %zu bytes failed", pr->id, n);
      exit(1);
    }
    b->size = n;
    b->seed = r;
    b->checksum = hard_fill(b->payload, n, r);
    pthread_mutex_lock(&pr->q.lock);
    while (pr->q.count == QUEUE_CAP)
      pthread_cond_wait(&pr->q.not_full, &pr->q.lock);
    pr->q.items[(pr->q.head + pr->q.count) % QUEUE_CAP] = b;
    pr->q.count++;
    pthread_cond_signal(&pr->q.not_empty);
    pthread_mutex_unlock(&pr->q.lock);
  }
  pthread_mutex_lock(&pr->q.lock);
  pr->q.done = 1;
  pthread_cond_broadcast(&pr->q.not_empty);
  pthread_mutex_unlock(&pr->q.lock);
  return NULL;
}

static void *consumer(void *arg) {
  struct pair *pr = arg;
  for (;;) {
    pthread_mutex_lock(&pr->q.lock);
    while (pr->q.count == 0 && !pr->q.done)
      pthread_cond_wait(&pr->q.not_empty, &pr->q.lock);
    if (pr->q.count == 0 && pr->q.done) {
      pthread_mutex_unlock(&pr->q.lock);
      break;
    }
    struct block *b = pr->q.items[pr->q.head];
    pr->q.head = (pr->q.head + 1) % QUEUE_CAP;
    pr->q.count--;
    pthread_cond_signal(&pr->q.not_full);
    pthread_mutex_unlock(&pr->q.lock);

    if (hard_sum(b->payload, b->size) != b->checksum) pr->bad++;
    if (b->seed % 5 == 0) {
      size_t keep = b->size;
      size_t n = (b->seed % 2) ? keep / 2 : keep * 2 + 100;
      size_t cmp = n < keep ? n : keep;
      uint64_t want = hard_sum(b->payload, cmp);
      struct block *nb = realloc(b, sizeof *nb + n);
      if (nb == NULL) {
        pr->bad++;
      } else {
        b = nb;
        if (hard_sum(b->payload, cmp) != want) pr->bad++;
        pr->reallocs++;
      }
    }
    free(b);
    pr->consumed++;
  }
  atomic_fetch_add(&finished, 1);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    printf("FAIL: usage: prodcons_pairs PAIRS BLOCKS-PER-PRODUCER\n");
    return 2;
  }
  unsigned pairs = (unsigned)atoi(argv[1]);
  unsigned long blocks = strtoul(argv[2], NULL, 10);
  hard_check_preload();
  hard_watchdog(80, "prodcons_pairs");
  struct pair *p = calloc(pairs, sizeof *p);
  pthread_t *prod = calloc(pairs, sizeof *prod), *cons = calloc(pairs, sizeof *cons);
  if (p == NULL || prod == NULL || cons == NULL) return 1;
  for (unsigned i = 0; i < pairs; i++) {
    p[i].id = i;
    p[i].blocks = blocks;
    pthread_mutex_init(&p[i].q.lock, NULL);
    pthread_cond_init(&p[i].q.not_empty, NULL);
    pthread_cond_init(&p[i].q.not_full, NULL);
  }
  double t0 = hard_now();
  for (unsigned i = 0; i < pairs; i++)
    if (pthread_create(&cons[i], NULL, consumer, &p[i]) ||
        pthread_create(&prod[i], NULL, producer, &p[i])) {
      printf("FAIL: pthread_create\n");
      return 1;
    }
  long rss_max = 0;
  while (atomic_load(&finished) < (int)pairs) {
    long rss = hard_rss_kib();
    if (rss > rss_max) rss_max = rss;
    if (rss > RSS_LIMIT_KIB) {
      printf("FAIL: RSS %ld KiB with at most %u blocks queued (limit %ld KiB)\n", rss,
             pairs * QUEUE_CAP, RSS_LIMIT_KIB);
      return 1;
    }
    hard_sleep_ms(20);
  }
  int failed = 0;
  for (unsigned i = 0; i < pairs; i++) {
    pthread_join(prod[i], NULL);
    pthread_join(cons[i], NULL);
    if (p[i].consumed != blocks || p[i].bad != 0 || p[i].reallocs == 0) {
      printf("FAIL: pair %u: %lu of %lu blocks consumed, %lu corrupted\n", i,
             p[i].consumed, blocks, p[i].bad);
      failed = 1;
    }
  }
  fprintf(stderr, "%u pairs x %lu blocks in %.1f s, RSS max %ld KiB\n", pairs, blocks,
          hard_now() - t0, rss_max);
  printf("prodcons_pairs: %u pairs x %lu blocks, cross-thread frees, RSS < %ld MiB: %s\n",
         pairs, blocks, RSS_LIMIT_KIB / 1024, failed || hard_failures ? "FAILED" : "ok");
  free(p);
  free(prod);
  free(cons);
  return failed || hard_failures ? 1 : 0;
}
