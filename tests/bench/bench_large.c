/* bench_large: large blocks, allocated, touched and freed with a small live set.
 *
 * Usage: bench_large [scale]   (default 1.0)
 *
 * Each op picks one of LIVE_SLOTS slots at random; if the slot holds a block,
 * the block is checked and freed; then a new block of 64 KiB-8 MiB is
 * allocated into it (log-uniform: an octave 64 KiB << 0..6 at random, then a
 * size uniform within it), and one byte per 4 KiB page (plus the last byte) is
 * written. So at most LIVE_SLOTS blocks are live and the same few MiB are
 * allocated over and over: an allocator that keeps freed large blocks (or
 * their pages) reuses memory that is already mapped, one that gives them back
 * to the OS at once (munmap, or madvise(MADV_DONTNEED)) pays a page fault for
 * every page on the next use. The program counts those faults: the minor page
 * faults of the loop (getrusage ru_minflt), in total and per op.
 *
 * Every touched byte carries a per-block tag, checked before the free; a
 * mismatch exits with status 3. Sizes and slots come from a fixed-seed
 * xorshift, so every allocator sees the same requests.
 * Prints ops, time, us per op, minflt, faults per op, peak RSS and check=ok.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

#define LIVE_SLOTS 8
#define TOUCH 4096 /* one write per this many bytes */
#define KiB ((size_t)1024)
#define MIN_SIZE (64 * KiB)
#define OCTAVES 7 /* 64 KiB << 0..6: sizes up to 8 MiB */

struct block {
  unsigned char *p;
  size_t size;
  uint64_t tag;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift64(void) {
  return xorshift64_step(&rng_state);
}

static unsigned char mark(uint64_t tag, size_t off) {
  return (unsigned char)(tag * 167u + off / TOUCH + 1);
}

static void fill(struct block *b) {
  for (size_t off = 0; off < b->size; off += TOUCH)
    b->p[off] = mark(b->tag, off);
  b->p[b->size - 1] = mark(b->tag, b->size - 1);
}

static void check_and_free(struct block *b) {
  for (size_t off = 0; off < b->size; off += TOUCH)
    if (b->p[off] != mark(b->tag, off)) {
      fprintf(stderr, "bench_large: CORRUPTION in block %llu (%zu B) at offset %zu\n",
              (unsigned long long)b->tag, b->size, off);
      exit(3);
    }
  if (b->p[b->size - 1] != mark(b->tag, b->size - 1)) {
    fprintf(stderr, "bench_large: CORRUPTION at the end of block %llu (%zu B)\n",
            (unsigned long long)b->tag, b->size);
    exit(3);
  }
  free(b->p);
  b->p = NULL;
}

static size_t block_size(void) {
  size_t lo = MIN_SIZE << (xorshift64() % OCTAVES);
  return lo + (size_t)(xorshift64() % lo);
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  if (scale <= 0) scale = 1.0;
  size_t ops = scale * 3000 < 20 ? 20 : (size_t)(scale * 3000);
  struct block slot[LIVE_SLOTS] = {{0}};
  size_t bytes = 0;

  long flt0 = minflt();
  double t0 = now_sec();
  for (size_t i = 0; i < ops; i++) {
    struct block *b = &slot[xorshift64() % LIVE_SLOTS];
    if (b->p) check_and_free(b);
    b->size = block_size();
    b->tag = i;
    b->p = malloc(b->size);
    if (!b->p) {
      fprintf(stderr, "bench_large: malloc(%zu) failed\n", b->size);
      return 2;
    }
    fill(b);
    bytes += b->size;
  }
  for (int k = 0; k < LIVE_SLOTS; k++)
    if (slot[k].p) check_and_free(&slot[k]);
  double dt = now_sec() - t0;
  long faults = minflt() - flt0;

  printf("bench_large ops=%zu live_max=%d mib_allocated=%.0f time=%.3fs us_per_op=%.1f "
         "minflt=%ld faults_per_op=%.1f peak_rss_kib=%ld check=ok\n",
         ops, LIVE_SLOTS, (double)bytes / (1024.0 * 1024.0), dt, dt * 1e6 / (double)ops,
         faults, (double)faults / (double)ops, status_kib("VmHWM"));
  return 0;
}
