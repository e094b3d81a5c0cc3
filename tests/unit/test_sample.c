/* test_sample.c - the allocation sampler (sample.c) as the profile uses it:
 * what a sample stands for when a large block is reallocated. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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
  cr_assert_gt(t.live_sampled, 0, "the grown block is a live sample");
  pm_free(p);
  pm_sample_totals(&t);
  cr_assert_eq(t.live_sampled, 0, "freed, it is not");
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
  uint64_t live = t.live_sampled;
  cr_assert_gt(live, 0);
  cr_assert_null(pm_realloc(p, (size_t)1 << 62), "an impossible size fails");
  pm_sample_totals(&t);
  cr_assert_eq(t.live_sampled, live, "the sample is still live");
  pm_free(p);
  pm_sample_totals(&t);
  cr_assert_eq(t.live_sampled, 0);
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
  cr_assert_gt(tot.live_sampled, 0, "the thread's blocks were sampled");
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
  cr_assert_eq(tot.live_sampled, 0, "%lu bytes still live after every block was freed",
               (unsigned long)tot.live_sampled);
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

/* Looks count other threads' pages while those threads allocate and free:
 * a producer hands 64-byte blocks to a consumer through a ring of RING
 * slots, and each also replaces blocks of its own N_OWN at random. The
 * heap never holds more than RING + 2 * N_OWN blocks and the one in each
 * thread's hands; a look that read a free list while its owner popped its
 * head stopped at the popped block's new contents and counted the rest of
 * the list as handed out, a page's worth more (bench_larson read 3.6 MiB
 * for 1.7). At one sample per 4 KiB, about a hundred looks race the
 * owners; that race is rare here (with a single walk, 10 runs passed),
 * so this bounds what concurrent looks count rather than catching it. */
enum { RING = 1024, N_OWN = 2000, HANDOFFS = 300000 };
static _Atomic(void *) ring[RING];

static void churn_own(void **own, uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  unsigned i = (unsigned)(*x % N_OWN);
  pm_free(own[i]);
  own[i] = pm_malloc(64);
  cr_assert_not_null(own[i]);
}

static void *consume(void *arg) {
  (void)arg;
  static void *own[N_OWN];
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (unsigned i = 0; i < N_OWN; i++)
    own[i] = pm_malloc(64);
  for (unsigned k = 0; k < HANDOFFS; k++) {
    void *p;
    while ((p = atomic_exchange(&ring[k % RING], NULL)) == NULL)
      sched_yield();
    memset(p, 0x5a, 64); /* the producer's page, written by this thread */
    pm_free(p);          /* a remote free */
    churn_own(own, &x);
  }
  for (unsigned i = 0; i < N_OWN; i++)
    pm_free(own[i]);
  return NULL;
}

Test(sample, looks_at_pages_other_threads_change_count_what_they_hold) {
  profile_on();
  setenv("POOLMALLOC_PROFILE_RATE", "4096", 1);
  static void *own[N_OWN];
  uint64_t x = 88172645463325252ull;
  for (unsigned i = 0; i < N_OWN; i++)
    own[i] = pm_malloc(64);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, consume, NULL), 0);
  for (unsigned k = 0; k < HANDOFFS; k++) {
    while (atomic_load(&ring[k % RING]) != NULL)
      sched_yield();
    void *p = pm_malloc(64);
    cr_assert_not_null(p);
    memset(p, 0xa5, 64); /* over the link the free list had here */
    atomic_store(&ring[k % RING], p);
    churn_own(own, &x);
  }
  cr_assert_eq(pthread_join(t, NULL), 0);
  pm_profile_totals tot;
  pm_sample_totals(&tot);
  uint64_t most = (uint64_t)(RING + 2 * N_OWN + 2) * 64, least = (uint64_t)N_OWN * 64;
  cr_assert_gt(tot.looks, 20, "%lu looks", (unsigned long)tot.looks);
  cr_assert_leq(tot.peak_bytes, most + most / 50, "peak %lu, the heap held %lu at most",
                (unsigned long)tot.peak_bytes, (unsigned long)most);
  cr_assert_geq(tot.peak_bytes, least, "peak %lu, the heap held %lu at least",
                (unsigned long)tot.peak_bytes, (unsigned long)least);
  for (unsigned i = 0; i < N_OWN; i++)
    pm_free(own[i]);
}

/* What is live at a report is counted like the peak: 50 blocks of 100 B
 * left after 10 MB of churn hold 5,000 bytes, where the estimate reads the
 * weight of the sample that fell on one of them (64 KiB or more), or 0. */
Test(sample, the_live_bytes_at_a_report_are_counted) {
  profile_on();
  for (int i = 0; i < 40000; i++)
    pm_free(pm_malloc(256));
  void *leak[50];
  for (int i = 0; i < 50; i++)
    leak[i] = pm_malloc(100);
  pm_profile_totals t;
  pm_sample_totals(&t);
  cr_assert_gt(t.samples, 0);
  cr_assert_eq(t.live_bytes, 5000, "live %lu (the estimate %lu), 5000 held",
               (unsigned long)t.live_bytes, (unsigned long)t.live_sampled);
  for (int i = 0; i < 50; i++)
    pm_free(leak[i]);
  pm_sample_totals(&t);
  cr_assert_eq(t.live_bytes, 0);
}
