/* bench_mixed: mixed object lifetimes, measuring time and memory retention.
 *
 * Usage: bench_mixed [scale]   (default 1.0)
 *
 * The run is a series of phases. A phase allocates many short-lived blocks
 * (16-512 B; 100k-300k of them, varying by phase, so the heap swells and
 * shrinks), and, spread among them, LONG_PER_PHASE long-lived blocks (16 B-4 KiB)
 * that are kept to the end of the run. It then frees the short-lived blocks in a
 * scattered order. The long-lived survivors end up strewn over memory that was
 * mostly freed, which is what makes allocators keep RSS they no longer need.
 *
 * At the end, with the long-lived blocks still allocated, it reads VmHWM (peak
 * RSS) and VmRSS from /proc/self/status, then checks and frees the survivors.
 * Every block carries a head and tail tag checked before its free; a mismatch
 * exits with status 3. Prints time, ops/s, live_kib (the survivors' bytes),
 * peak_rss_kib and final_rss_kib.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define LONG_PER_PHASE 50
#define MAX_SHORT 300000
#define STRIDE 7919 /* prime: i * STRIDE % n visits every index when n % STRIDE != 0 */

struct block {
  unsigned char *p;
  uint32_t size;
};

static uint64_t rng_state = 0xda942042e4dd58b5ull;

static uint64_t xorshift64(void) {
  return xorshift64_step(&rng_state);
}

static struct block alloc_block(size_t size, uint64_t tag) {
  unsigned char *p = malloc(size);
  if (!p) {
    fprintf(stderr, "bench_mixed: malloc(%zu) failed\n", size);
    exit(2);
  }
  memcpy(p, &tag, sizeof tag);
  memcpy(p + size - sizeof tag, &tag, sizeof tag);
  return (struct block){p, (uint32_t)size};
}

static void free_block(struct block b, uint64_t tag) {
  uint64_t head, tail;
  memcpy(&head, b.p, sizeof head);
  memcpy(&tail, b.p + b.size - sizeof tail, sizeof tail);
  if (head != tag || tail != tag) {
    fprintf(stderr, "bench_mixed: CORRUPTION in block tagged %llu\n",
            (unsigned long long)tag);
    exit(3);
  }
  free(b.p);
}

/* 16 B .. 4 KiB, skewed towards small sizes. */
static size_t long_size(void) {
  unsigned shift = (unsigned)(xorshift64() % 9); /* 16 << 0..8 */
  return (16u << shift) + xorshift64() % (16u << shift);
}

static size_t run_phase(int phase, struct block *shorts, struct block *longs,
                        size_t *nlong) {
  size_t n = 100000 + (size_t)(phase % 5) * 50000;
  size_t every = n / LONG_PER_PHASE;
  uint64_t base = (uint64_t)phase << 32;
  for (size_t i = 0; i < n; i++) {
    shorts[i] = alloc_block(16 + xorshift64() % 497, base + i);
    if (i % every == every - 1) {
      longs[*nlong] = alloc_block(long_size(), ~(uint64_t)*nlong);
      (*nlong)++;
    }
  }
  for (size_t k = 0; k < n; k++) {
    size_t i = k * STRIDE % n;
    free_block(shorts[i], base + i);
  }
  return n + LONG_PER_PHASE;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  if (scale <= 0) scale = 1.0;
  int phases = scale * 50 < 1 ? 1 : (int)(scale * 50);
  struct block *shorts = malloc(sizeof *shorts * MAX_SHORT);
  struct block *longs = malloc(sizeof *longs * (size_t)phases * LONG_PER_PHASE);
  if (!shorts || !longs) return 2;

  size_t nlong = 0, ops = 0;
  double t0 = now_sec();
  for (int ph = 0; ph < phases; ph++)
    ops += run_phase(ph, shorts, longs, &nlong);
  size_t live = 0;
  for (size_t i = 0; i < nlong; i++)
    live += longs[i].size;
  long hwm = status_kib("VmHWM"), rss = status_kib("VmRSS");
  for (size_t i = 0; i < nlong; i++)
    free_block(longs[i], ~(uint64_t)i);
  double dt = now_sec() - t0;

  printf("bench_mixed phases=%d ops=%zu long_lived=%zu time=%.3fs ops_per_sec=%.0f "
         "live_kib=%zu peak_rss_kib=%ld final_rss_kib=%ld check=ok\n",
         phases, ops, nlong, dt, (double)ops / dt, live / 1024, hwm, rss);
  free(longs);
  free(shorts);
  return 0;
}
