/* bench_realloc: realloc growth chains and large calloc.
 *
 * Usage: bench_realloc [scale] [mode]   (defaults: 1.0, all)
 *   mode  chain | calloc | all
 *
 *   chain   LIVE_CHAINS buffers grow side by side, round robin, by 16-128 B per
 *           realloc, each up to a target of 1 KiB-1 MiB (log-uniform); a chain
 *           that reaches its target is checked in full, freed and restarted.
 *           Every realloc checks the first and last old byte, then fills the new
 *           tail with the chain's byte pattern.
 *   calloc  calloc blocks of 1-8 MiB one at a time, check that every word is
 *           zero, overwrite it with nonzero data and free the block, so an
 *           allocator that recycles memory without zeroing it is caught.
 *
 * Sizes come from a fixed-seed xorshift. A check failure exits with status 3.
 * Prints ns per realloc (chain) and us per calloc'd block (calloc).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define LIVE_CHAINS 8
#define MIN_STEP 16
#define MAX_STEP 128
#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

struct chain {
  unsigned char *buf;
  size_t size, target;
  unsigned seed;
};

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t xorshift64(void) { return xorshift64_step(&rng_state); }

static void corrupt(const char *what, size_t at) {
  fprintf(stderr, "bench_realloc: CORRUPTION (%s) at offset %zu\n", what, at);
  exit(3);
}

static void out_of_memory(size_t n) {
  fprintf(stderr, "bench_realloc: allocation of %zu bytes failed\n", n);
  exit(2);
}

static unsigned char pattern(unsigned seed, size_t i) { return (unsigned char)(i * 131u + seed); }

static void chain_start(struct chain *c, unsigned seed) {
  c->seed = seed;
  c->size = 0;
  c->buf = NULL;
  c->target = KiB << (xorshift64() % 11); /* 1 KiB .. 1 MiB */
}

static void chain_finish(struct chain *c) {
  for (size_t i = 0; i < c->size; i++)
    if (c->buf[i] != pattern(c->seed, i)) corrupt("chain contents", i);
  free(c->buf);
}

/* One realloc step; returns 0 once the chain has reached its target. */
static int chain_grow(struct chain *c) {
  size_t old = c->size;
  size_t size = old + MIN_STEP + xorshift64() % (MAX_STEP - MIN_STEP + 1);
  if (size > c->target) size = c->target;
  unsigned char *p = realloc(c->buf, size);
  if (!p) out_of_memory(size);
  if (old && (p[0] != pattern(c->seed, 0) || p[old - 1] != pattern(c->seed, old - 1)))
    corrupt("realloc moved data", old - 1);
  for (size_t i = old; i < size; i++) p[i] = pattern(c->seed, i);
  c->buf = p;
  c->size = size;
  return size < c->target;
}

static size_t run_chain(double scale) {
  struct chain ch[LIVE_CHAINS];
  size_t chains = scale * 3000 < 1 ? 1 : (size_t)(scale * 3000), started = 0, reallocs = 0;
  for (int k = 0; k < LIVE_CHAINS; k++) chain_start(&ch[k], (unsigned)started++);
  for (size_t done = 0; done < chains;) {
    for (int k = 0; k < LIVE_CHAINS; k++) {
      reallocs++;
      if (chain_grow(&ch[k])) continue;
      chain_finish(&ch[k]);
      done++;
      chain_start(&ch[k], (unsigned)started++);
    }
  }
  for (int k = 0; k < LIVE_CHAINS; k++) chain_finish(&ch[k]);
  return reallocs;
}

/* Checks every word is zero and overwrites it, so the next block that reuses
 * this memory must be zeroed again by the allocator. */
static void check_and_dirty(uint64_t *w, size_t words) {
  for (size_t i = 0; i < words; i++) {
    if (w[i]) corrupt("calloc not zeroed", i * 8);
    w[i] = i | 1;
  }
}

static size_t run_calloc(double scale) {
  size_t blocks = scale * 1200 < 1 ? 1 : (size_t)(scale * 1200);
  for (size_t b = 0; b < blocks; b++) {
    size_t size = MiB + (xorshift64() % (7 * MiB / 8 + 1)) * 8; /* 1..8 MiB */
    uint64_t *p = calloc(size / 8, 8);
    if (!p) out_of_memory(size);
    check_and_dirty(p, size / 8);
    free(p);
  }
  return blocks;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  const char *mode = argc > 2 ? argv[2] : "all";
  if (scale <= 0) scale = 1.0;
  int all = strcmp(mode, "all") == 0;
  if (!all && strcmp(mode, "chain") != 0 && strcmp(mode, "calloc") != 0) {
    fprintf(stderr, "bench_realloc: unknown mode '%s' (chain|calloc|all)\n", mode);
    return 1;
  }
  printf("bench_realloc");
  if (all || strcmp(mode, "chain") == 0) {
    double t0 = now_sec();
    size_t n = run_chain(scale);
    double dt = now_sec() - t0;
    printf(" chain: reallocs=%zu time=%.3fs ns_per_realloc=%.1f;", n, dt, dt * 1e9 / (double)n);
  }
  if (all || strcmp(mode, "calloc") == 0) {
    double t0 = now_sec();
    size_t n = run_calloc(scale);
    double dt = now_sec() - t0;
    printf(" calloc: blocks=%zu time=%.3fs us_per_block=%.1f;", n, dt, dt * 1e6 / (double)n);
  }
  printf(" check=ok\n");
  return 0;
}
