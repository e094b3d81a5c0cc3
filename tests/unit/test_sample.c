/* test_sample.c - the allocation sampler (sample.c) as the profile uses it:
 * what a sample stands for when a large block is reallocated. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sample.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static void profile_on(void) {
  setenv("POOLMALLOC_STATS", "json", 1);
  setenv("POOLMALLOC_STATS_FILE", "/dev/null", 1);
  setenv("POOLMALLOC_PROFILE_RATE", "65536", 1);
}

/* the profile's estimate of bytes allocated: every stack's sum */
static double allocated_estimate(void) {
  static pm_stack_info top[64];
  size_t n = pm_sample_top(top, 64, 2);
  double sum = 0;
  for (size_t i = 0; i < n && i < 64; i++)
    sum += (double)top[i].alloc_bytes;
  return sum;
}

/* A large block grown by small steps: jemalloc grows most of them in place.
 * Such a realloc allocates its growth, not its whole size again: counting
 * the size sampled nearly every realloc (thousands of samples here, and an
 * estimate of bytes allocated hundreds of times the truth). A block that
 * moves allocates its new size. A sample that grows in place stays live. */
Test(sample, a_block_growing_in_place_counts_its_growth) {
  profile_on();
  size_t size = 64 * KiB, allocated = size, in_place = 0, moves = 0;
  char *p = pm_malloc(size);
  cr_assert_not_null(p);
  memset(p, 1, size);
  while (size < 8 * MiB) {
    size_t usable = pm_usable_size(p), grown = size + 64;
    char *q = pm_realloc(p, grown);
    cr_assert_not_null(q);
    cr_assert_eq(q[size - 1], 1, "the block's bytes are kept");
    q[grown - 1] = 1;
    if (q == p) {
      in_place++;
      allocated += grown > usable ? grown - usable : 0;
    } else {
      moves++;
      allocated += grown;
    }
    p = q;
    size = grown;
  }
  pm_profile_totals t;
  pm_sample_totals(&t);
  cr_assert_gt(in_place, 100000, "most reallocs were in place (%zu, %zu moved)", in_place,
               moves);
  /* expected samples: allocated / 64 KiB, about 200 */
  cr_assert_lt(t.samples, 1000, "%lu samples for %zu bytes allocated",
               (unsigned long)t.samples, allocated);
  double est = allocated_estimate();
  cr_assert(est > 0.6 * (double)allocated && est < 1.6 * (double)allocated,
            "estimated %.0f bytes allocated, exact %zu", est, allocated);
  cr_assert_gt(t.live_bytes, 0, "the grown block is a live sample");
  pm_free(p);
  pm_sample_totals(&t);
  cr_assert_eq(t.live_bytes, 0, "freed, it is not");
}

/* A realloc that fails leaves the block and its sample as they were. */
Test(sample, a_failed_realloc_keeps_the_sample) {
  profile_on();
  setenv("POOLMALLOC_PROFILE_RATE", "16", 1); /* every large block is sampled */
  void *warm = pm_malloc(1 * MiB);            /* the first countdown only arms */
  pm_free(warm);
  void *p = pm_malloc(1 * MiB);
  cr_assert_not_null(p);
  pm_profile_totals t;
  pm_sample_totals(&t);
  uint64_t live = t.live_bytes;
  cr_assert_gt(live, 0);
  cr_assert_null(pm_realloc(p, (size_t)1 << 62), "an impossible size fails");
  pm_sample_totals(&t);
  cr_assert_eq(t.live_bytes, live, "the sample is still live");
  pm_free(p);
  pm_sample_totals(&t);
  cr_assert_eq(t.live_bytes, 0);
}

/* ---- samples on the pages of a thread that exited ---- */

#define N_THREAD_BLOCKS 20000
static void *thread_blocks[N_THREAD_BLOCKS];

static void *allocate_and_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < N_THREAD_BLOCKS; i++) {
    thread_blocks[i] = pm_malloc(64);
    cr_assert_not_null(thread_blocks[i]);
  }
  return NULL; /* its heaps are released: their pages are abandoned */
}

/* A thread samples and exits; its pages, the watched ones of its samples
 * among them, are adopted by the next thread that needs pages of their
 * class. The samples' frees must still reach the sampler: adopted by an
 * ordinary heap, a watched page was that thread's own, its blocks were
 * freed on the fast path and their samples stayed live for ever (larson,
 * whose threads exit every generation: hundreds of MiB "live at exit"). */
Test(sample, samples_on_an_exited_threads_pages_are_forgotten) {
  profile_on();
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, allocate_and_exit, NULL), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  pm_profile_totals tot;
  pm_sample_totals(&tot);
  cr_assert_gt(tot.live_bytes, 0, "the thread's blocks were sampled");
  enum { MINE = 40000 };
  static void *mine[MINE];
  for (int i = 0; i < MINE; i++) { /* this thread adopts the abandoned pages */
    mine[i] = pm_malloc(64);
    cr_assert_not_null(mine[i]);
  }
  for (int i = 0; i < N_THREAD_BLOCKS; i++)
    pm_free(thread_blocks[i]);
  for (int i = 0; i < MINE; i++)
    pm_free(mine[i]);
  pm_sample_totals(&tot);
  cr_assert_eq(tot.live_bytes, 0, "%lu bytes still live after every block was freed",
               (unsigned long)tot.live_bytes);
}

/* The heap peak is counted, not the estimate's highest value. A steady
 * heap of N_STEADY 256-byte blocks, one replaced at a time: the live
 * estimate (about 16 samples of 64 KiB) wanders by a quarter of itself, and
 * its highest value over the run was twice the heap (2.0-2.9 MiB for
 * 1,000 KB and 1,250 KB). `high` blocks more are held for a short while
 * after the first phase: a later peak, 1.25 times the first, which the
 * estimate's early wander can hide from looks at its new highs alone. */
enum { N_STEADY = 4000, N_HIGH = 1000, STEADY_OPS = 600000 };
static void *steady[N_STEADY + N_HIGH];

static void churn(unsigned n, uint64_t *x, long ops) {
  for (long k = 0; k < ops; k++) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    unsigned i = (unsigned)(*x % n);
    pm_free(steady[i]);
    steady[i] = pm_malloc(256);
    cr_assert_not_null(steady[i]);
  }
}

static void steady_heap(unsigned high) {
  profile_on();
  uint64_t x = 88172645463325252ull;
  for (unsigned i = 0; i < N_STEADY; i++)
    steady[i] = pm_malloc(256);
  churn(N_STEADY, &x, STEADY_OPS);
  for (unsigned i = N_STEADY; i < N_STEADY + high; i++)
    steady[i] = pm_malloc(256);
  churn(N_STEADY + high, &x, high ? STEADY_OPS / 5 : STEADY_OPS);
  for (unsigned i = N_STEADY; i < N_STEADY + high; i++)
    pm_free(steady[i]);
  churn(N_STEADY, &x, STEADY_OPS);
  pm_profile_totals t;
  pm_sample_totals(&t);
  uint64_t want = (uint64_t)(N_STEADY + high) * 256;
  cr_assert_geq(t.peak_bytes, want, "peak %lu, the heap held %lu",
                (unsigned long)t.peak_bytes, (unsigned long)want);
  cr_assert_leq(t.peak_bytes, want + want / 50, "peak %lu, the heap held %lu at most",
                (unsigned long)t.peak_bytes, (unsigned long)want);
  cr_assert_gt(t.looks, 0);
  /* the sites' figures at the peak are shares of the counted total */
  static pm_stack_info top[64];
  size_t n = pm_sample_top(top, 64, 0);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += top[i].peak_bytes;
  cr_assert_leq(sum, t.peak_bytes + t.peak_bytes / 50, "sites at the peak sum to %lu",
                (unsigned long)sum);
  cr_assert_geq(sum + sum / 50, t.peak_bytes, "sites at the peak sum to %lu",
                (unsigned long)sum);
  for (unsigned i = 0; i < N_STEADY; i++)
    pm_free(steady[i]);
}

Test(sample, the_peak_of_a_steady_heap_is_what_it_holds) {
  steady_heap(0);
}

Test(sample, a_later_peak_hidden_by_the_estimates_wander_is_found) {
  steady_heap(N_HIGH);
}
