/* bench_mstress: threads that come and go, churn small blocks, keep few of
 * them for long (the shape of mimalloc-bench's mstress; our own code).
 *
 * Usage: bench_mstress [scale] [threads]   (defaults: 1.0, 4)
 *
 * The run is ROUNDS rounds; each starts `threads` threads and joins them.
 * A thread makes a number of allocations (more for some threads) of
 * 8 B << 0..4 (8-128 B), one in 100 of them 100 times that (one in
 * 1,000 1000 times, one in 10,000 10,000 times), every word written; it keeps half of
 * what it allocates until it exits ("retained", 8 B << 0..6) and frees
 * two-thirds of the rest soon after, in random order; and a quarter of the
 * time it swaps one of its blocks with a slot of a shared transfer array,
 * so blocks outlive their thread and are freed by another one, in a later
 * round. Between rounds the main thread frees about half of the transfer
 * slots. So few blocks are live for long (the transfer slots), while every
 * round allocates and frees a lot: an allocator that leaves the survivors
 * scattered one per page keeps many nearly empty pages resident.
 *
 * Every block carries a tag (its size and a serial) at its start and end,
 * checked before it is freed; a mismatch exits with status 3.
 * Prints ops, time, peak RSS (VmHWM) and check=ok.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define ROUNDS 10
#define TRANSFERS 1000

static _Atomic(uint64_t *) transfer[TRANSFERS];
static _Atomic uint64_t serials, ops;
static double scale = 1.0;

static int chance(unsigned percent, uint64_t *r) {
  return xorshift64_step(r) % 100 < percent;
}

/* words: the block's size in 8-byte words; a tag at both ends */
static uint64_t *alloc_words(size_t words, uint64_t *r) {
  if (chance(1, r)) /* now and then a bigger one, rarely a large one */
    words *= chance(1, r) ? 10000 : chance(10, r) ? 1000 : 100;
  if (words < 2) words = 2;
  uint64_t *p = malloc(words * sizeof *p);
  if (!p) {
    fprintf(stderr, "bench_mstress: malloc(%zu) failed\n", words * sizeof *p);
    exit(2);
  }
  uint64_t tag =
      atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) << 32 | words;
  for (size_t i = 1; i + 1 < words; i++) /* every page is touched */
    p[i] = tag ^ i;
  p[0] = tag;
  p[words - 1] = tag;
  atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
  return p;
}

static void free_words(uint64_t *p) {
  if (p == NULL) return;
  uint64_t tag = p[0];
  size_t words = (size_t)(tag & 0xffffffffu);
  if (words < 2 || words > 64 * 10000 || p[words - 1] != tag) {
    fprintf(stderr, "bench_mstress: CORRUPTION in block %llu\n",
            (unsigned long long)(tag >> 32));
    exit(3);
  }
  free(p);
}

static void *stress(void *arg) {
  uintptr_t tid = (uintptr_t)arg;
  uint64_t r = tid * 0x9e3779b97f4a7c15ull + 43;
  size_t allocs = (size_t)(100 * 50 * scale) * (tid % 8 + 1);
  size_t retain = allocs / 2;
  uint64_t **data = malloc(allocs * sizeof *data);
  uint64_t **kept = malloc(retain * sizeof *kept);
  if (!data || !kept) exit(2);
  size_t data_top = 0, kept_top = 0;
  while (allocs > 0 || retain > 0) {
    if (retain == 0 || (chance(50, &r) && allocs > 0)) {
      allocs--;
      data[data_top++] = alloc_words((size_t)1 << (xorshift64_step(&r) % 5), &r);
    } else {
      kept[kept_top++] = alloc_words((size_t)1 << (xorshift64_step(&r) % 7), &r);
      retain--;
    }
    if (chance(66, &r) && data_top > 0) {
      size_t i = xorshift64_step(&r) % data_top;
      free_words(data[i]);
      data[i] = NULL;
    }
    if (chance(25, &r) && data_top > 0) {
      size_t i = xorshift64_step(&r) % data_top;
      size_t t = xorshift64_step(&r) % TRANSFERS;
      data[i] = atomic_exchange(&transfer[t], data[i]);
    }
  }
  for (size_t i = 0; i < kept_top; i++)
    free_words(kept[i]);
  for (size_t i = 0; i < data_top; i++)
    free_words(data[i]);
  free(kept);
  free(data);
  return NULL;
}

int main(int argc, char **argv) {
  scale = argc > 1 ? atof(argv[1]) : 1.0;
  int threads = argc > 2 ? atoi(argv[2]) : 4;
  if (scale <= 0) scale = 1.0;
  if (threads < 1 || threads > 256) threads = 4;
  pthread_t tid[256];
  uint64_t r = 42;
  double t0 = now_sec();
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < threads; i++)
      if (pthread_create(&tid[i], NULL, stress,
                         (void *)(uintptr_t)(round * threads + i))) {
        fprintf(stderr, "bench_mstress: pthread_create failed\n");
        return 2;
      }
    for (int i = 0; i < threads; i++)
      pthread_join(tid[i], NULL);
    for (int t = 0; t < TRANSFERS; t++)
      if (chance(50, &r) || round + 1 == ROUNDS)
        free_words(atomic_exchange(&transfer[t], NULL));
  }
  double dt = now_sec() - t0;
  printf("bench_mstress threads=%d rounds=%d ops=%llu time=%.3fs peak_rss_kib=%ld "
         "check=ok\n",
         threads, ROUNDS, (unsigned long long)ops, dt, status_kib("VmHWM"));
  return 0;
}
