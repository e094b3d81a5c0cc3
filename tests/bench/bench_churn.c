/* bench_churn: single-thread malloc/free churn of small blocks.
 *
 * Usage: bench_churn [scale] [mode]
 *   scale  multiplier on the amount of work (default 1.0; --quick uses ~0.01)
 *   mode   pair32 | lifo | fifo | random | all (default all)
 *
 *   pair32  malloc(32) then free it at once, repeated.
 *   lifo    allocate a batch of BATCH blocks of 16-256 B, free in reverse order.
 *   fifo    same batch, freed in allocation order.
 *   random  same batch, freed in a random order.
 *
 * Sizes and free orders come from a fixed-seed xorshift, so every allocator sees
 * exactly the same request stream. One "op" is one malloc plus its free; the
 * result is ns per op. Each block gets a tag written at its head and tail that is
 * checked before the free; a mismatch exits with status 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define BATCH 10000     /* blocks live at once in the batch modes */
#define NPERM 8         /* precomputed free orders for the random mode */
#define SIZE_TABLE 4096 /* precomputed request sizes, used cyclically */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift64(void) { return xorshift64_step(&rng_state); }

/* Keeps the compiler from proving the block unused and deleting malloc/free. */
static inline void escape(void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench_churn: malloc(%zu) failed\n", n);
    exit(2);
  }
  return p;
}

static void corrupt(const char *mode, size_t i) {
  fprintf(stderr, "bench_churn: CORRUPTION in mode %s at block %zu\n", mode, i);
  exit(3);
}

static void put_tag(unsigned char *p, size_t size, uint64_t tag) {
  memcpy(p, &tag, sizeof tag);
  memcpy(p + size - sizeof tag, &tag, sizeof tag);
}

static int tag_ok(const unsigned char *p, size_t size, uint64_t tag) {
  uint64_t a, b;
  memcpy(&a, p, sizeof a);
  memcpy(&b, p + size - sizeof b, sizeof b);
  return a == tag && b == tag;
}

static size_t scaled(double base, double scale) {
  double n = base * scale;
  return n < 1.0 ? 1 : (size_t)n;
}

/* malloc(32); tag; check; free. Returns the number of ops. */
static size_t run_pair32(double scale) {
  size_t n = scaled(3e8, scale);
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = xmalloc(32);
    escape(p);
    put_tag(p, 32, i);
    if (!tag_ok(p, 32, i)) corrupt("pair32", i);
    free(p);
  }
  return n;
}

struct batch {
  unsigned char *ptr[BATCH];
  uint16_t size[SIZE_TABLE];
  uint32_t perm[NPERM][BATCH];
};

static void batch_init(struct batch *b) {
  for (size_t i = 0; i < SIZE_TABLE; i++) b->size[i] = (uint16_t)(16 + xorshift64() % 241);
  for (size_t k = 0; k < NPERM; k++) {
    for (uint32_t i = 0; i < BATCH; i++) b->perm[k][i] = i;
    for (size_t i = BATCH - 1; i > 0; i--) { /* Fisher-Yates */
      size_t j = xorshift64() % (i + 1);
      uint32_t t = b->perm[k][i];
      b->perm[k][i] = b->perm[k][j];
      b->perm[k][j] = t;
    }
  }
}

static size_t block_size(const struct batch *b, size_t round, size_t i) {
  return b->size[(round * 7 + i) % SIZE_TABLE];
}

static void batch_fill(struct batch *b, size_t round) {
  for (size_t i = 0; i < BATCH; i++) {
    size_t sz = block_size(b, round, i);
    b->ptr[i] = xmalloc(sz);
    put_tag(b->ptr[i], sz, round * BATCH + i);
  }
}

static void batch_free_one(struct batch *b, const char *mode, size_t round, size_t i) {
  if (!tag_ok(b->ptr[i], block_size(b, round, i), round * BATCH + i)) corrupt(mode, i);
  free(b->ptr[i]);
}

/* Batch modes: fill BATCH blocks, then free them in the order the mode asks. */
static size_t run_batch(const char *mode, double scale) {
  struct batch *b = xmalloc(sizeof *b);
  batch_init(b);
  size_t rounds = scaled(6000, scale);
  for (size_t r = 0; r < rounds; r++) {
    batch_fill(b, r);
    for (size_t k = 0; k < BATCH; k++) {
      size_t i = k;
      if (mode[0] == 'l') i = BATCH - 1 - k;
      else if (mode[0] == 'r') i = b->perm[r % NPERM][k];
      batch_free_one(b, mode, r, i);
    }
  }
  free(b);
  return rounds * BATCH;
}

static const char *const modes[] = {"pair32", "lifo", "fifo", "random"};
#define NMODES (sizeof modes / sizeof modes[0])

static size_t run_mode(const char *mode, double scale) {
  if (strcmp(mode, "pair32") == 0) return run_pair32(scale);
  return run_batch(mode, scale);
}

static int mode_known(const char *mode) {
  for (size_t m = 0; m < NMODES; m++)
    if (strcmp(mode, modes[m]) == 0) return 1;
  return strcmp(mode, "all") == 0;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  const char *mode = argc > 2 ? argv[2] : "all";
  if (scale <= 0) scale = 1.0;
  if (!mode_known(mode)) {
    fprintf(stderr, "bench_churn: unknown mode '%s' (pair32|lifo|fifo|random|all)\n", mode);
    return 1;
  }
  printf("bench_churn");
  for (size_t m = 0; m < NMODES; m++) {
    if (strcmp(mode, "all") != 0 && strcmp(mode, modes[m]) != 0) continue;
    double t0 = now_sec();
    size_t ops = run_mode(modes[m], scale);
    double dt = now_sec() - t0;
    printf(" %s: ops=%zu time=%.3fs ns_per_op=%.2f;", modes[m], ops, dt, dt * 1e9 / (double)ops);
  }
  printf(" check=ok\n");
  return 0;
}
