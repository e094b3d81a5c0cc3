/* bench_frag: fragmentation by a few long-lived blocks among many short-lived
 * ones of the same sizes, told apart only by where they are allocated.
 *
 * Usage: bench_frag [scale]   (default 1.0)
 *
 * The run is a series of phases. A phase allocates SHORT_PER_PHASE short-lived
 * blocks of 16-512 B (random sizes) from short_alloc(), and after every
 * KEEP_EVERY-th of them one long-lived block of the same size range from
 * keep_alloc(), a separate function that is never inlined, cloned or merged
 * with short_alloc(): the two are distinct call sites, so an allocator that
 * predicts lifetimes from the call site (its return address) can tell them
 * apart, while one that looks at sizes alone cannot. At the end of the phase
 * the short-lived blocks are freed in a scattered order, except one in
 * CARRY_EVERY, which lives on to the end of the next phase. A long-lived
 * block is kept for 10-50 phases, then freed at the end of its last phase.
 *
 * So live data at a phase's end is small (the long-lived set, a few MiB at
 * full scale) while each phase swells the heap by tens of MiB. An allocator
 * that puts long-lived blocks among short-lived ones keeps pages that are
 * almost empty but cannot be given back: RSS stays far above the live bytes.
 *
 * After the last phase (its short-lived blocks freed, the long-lived set still
 * allocated) it reads VmRSS (end_rss_kib), idles for 2 s (0.1 s below scale
 * 0.5) allocating a little every 5 ms (settle()), then reads VmHWM (peak
 * RSS) and VmRSS (final RSS) from
 * /proc/self/status, then checks and frees the survivors. Bookkeeping arrays
 * are mmap'd (outside the allocator under test) and touched before the first
 * phase; base_rss_kib is VmRSS then, so final_rss_kib - base_rss_kib is what
 * the heap holds at the end. Prints live_kib, peak_rss_kib, final_rss_kib,
 * rss_over_live (final RSS / live bytes) and heap_over_live ((final RSS - base
 * RSS) / live bytes).
 *
 * Every block has a head and a tail tag checked before its free; a mismatch
 * exits with status 3. A fixed-seed xorshift makes every run identical.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_tagged.h"
#include "bench_util.h"

#define KEEP_EVERY 200
#define CARRY_EVERY 8
#define MIN_SIZE 16
#define MAX_SIZE 512
#define MIN_LIFE 10 /* phases a long-lived block is kept */
#define MAX_LIFE 50
#define STRIDE 7919 /* prime: k * STRIDE % n visits every index when n % STRIDE != 0 */

/* A distinct call site the compiler may not inline, clone or fold into
 * another function (GCC's identical code folding would merge two identical
 * bodies into one address; the counters also make the bodies differ). */
#if defined(__clang__)
#define CALL_SITE __attribute__((noinline))
#else
#define CALL_SITE __attribute__((noipa))
#endif

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static size_t short_count, keep_count;

static uint64_t xorshift64(void) {
  return xorshift64_step(&rng_state);
}

static void die(const char *what, size_t n) {
  fprintf(stderr, "bench_frag: %s (%zu)\n", what, n);
  exit(2);
}

CALL_SITE static unsigned char *short_alloc(size_t size, uint64_t tag) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc failed", size);
  tag_block(p, size, tag);
  short_count++;
  return p;
}

CALL_SITE static unsigned char *keep_alloc(size_t size, uint64_t tag) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc failed", size);
  tag_block(p, size, tag);
  keep_count += 1 + (size > MAX_SIZE); /* differs from short_alloc's body */
  return p;
}

static uint32_t random_size(void) {
  return MIN_SIZE + (uint32_t)(xorshift64() % (MAX_SIZE - MIN_SIZE + 1));
}

/* Zeroed memory outside the allocator under test, resident from the start. */
static void *book(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap failed", n);
  memset(p, 0, n);
  return p;
}

/* After the last phase the program goes on quietly for `sec` seconds: a
 * few small blocks allocated and freed every 5 ms, the way a server idles.
 * An allocator that gives free memory back on a timer (poolmalloc's
 * POOLMALLOC_DECAY_MS, jemalloc's and mimalloc's decay/purge delays) does
 * so now, if the long-lived blocks let it: what it cannot give back is
 * what they pin. */
static void settle(double sec) {
  double end = now_sec() + sec;
  void *few[64];
  while (now_sec() < end) {
    for (int r = 0; r < 32; r++) {
      for (int i = 0; i < 64; i++)
        if ((few[i] = malloc(random_size())) == NULL) die("malloc failed", 0);
      for (int i = 0; i < 64; i++)
        free(few[i]);
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  if (scale <= 0) scale = 1.0;
  int phases = scale * 100 < 12 ? 12 : (int)(scale * 100);
  size_t per_phase = scale * 1e6 < 2000 ? 2000 : scale * 1e6 > 1e5 ? 100000 : scale * 1e6;
  if (per_phase % STRIDE == 0) per_phase++;
  size_t keep_cap = (size_t)phases * (per_phase / KEEP_EVERY + 1);

  struct block *shorts = book(sizeof *shorts * per_phase);
  struct block *carried = book(sizeof *carried * per_phase);
  struct block *longs = book(sizeof *longs * keep_cap);
  size_t ncarried = 0, nlong = 0, allocs = 0;
  uint64_t next_tag = 1;
  long base_rss = status_kib("VmRSS");

  double t0 = now_sec();
  for (int ph = 0; ph < phases; ph++) {
    for (size_t i = 0; i < per_phase; i++) {
      uint32_t size = random_size();
      shorts[i] = (struct block){short_alloc(size, next_tag), size, 0, next_tag};
      next_tag++;
      if (i % KEEP_EVERY == KEEP_EVERY - 1) {
        size = random_size();
        uint32_t life = MIN_LIFE + (uint32_t)(xorshift64() % (MAX_LIFE - MIN_LIFE + 1));
        longs[nlong++] = (struct block){keep_alloc(size, next_tag), size,
                                        (uint32_t)ph + life, next_tag};
        next_tag++;
      }
    }
    allocs += per_phase + per_phase / KEEP_EVERY;
    /* the previous phase's stragglers go now; one in CARRY_EVERY of this
     * phase's blocks stays to the end of the next phase (none after the last) */
    for (size_t k = 0; k < ncarried; k++)
      check_and_free(&carried[k], "bench_frag");
    ncarried = 0;
    for (size_t k = 0; k < per_phase; k++) {
      size_t i = k * STRIDE % per_phase;
      if (ph + 1 < phases && xorshift64() % CARRY_EVERY == 0)
        carried[ncarried++] = shorts[i];
      else
        check_and_free(&shorts[i], "bench_frag");
    }
    for (size_t k = 0; k < nlong;) {
      if (longs[k].until == (uint32_t)ph) {
        check_and_free(&longs[k], "bench_frag");
        longs[k] = longs[--nlong];
      } else {
        k++;
      }
    }
  }
  double dt = now_sec() - t0;

  size_t live = 0;
  for (size_t k = 0; k < nlong; k++)
    live += longs[k].size;
  long end_rss = status_kib("VmRSS");
  settle(scale >= 0.5 ? 2.0 : 0.1);
  long hwm = status_kib("VmHWM"), rss = status_kib("VmRSS");
  for (size_t k = 0; k < nlong; k++)
    check_and_free(&longs[k], "bench_frag");
  if (keep_count != (size_t)phases * (per_phase / KEEP_EVERY) ||
      short_count + keep_count != allocs)
    die("allocation count mismatch", keep_count);

  double live_kib = (double)live / 1024.0;
  printf("bench_frag phases=%d short_per_phase=%zu keep_every=%d allocs=%zu time=%.3fs "
         "ops_per_sec=%.0f long_live=%zu live_kib=%.0f base_rss_kib=%ld peak_rss_kib=%ld "
         "end_rss_kib=%ld final_rss_kib=%ld rss_over_live=%.2f heap_over_live=%.2f "
         "check=ok\n",
         phases, per_phase, KEEP_EVERY, allocs, dt, (double)allocs / dt, nlong, live_kib,
         base_rss, hwm, end_rss, rss, live ? (double)rss / live_kib : 0.0,
         live ? (double)(rss - base_rss) / live_kib : 0.0);
  return 0;
}
