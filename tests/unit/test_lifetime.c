/* test_lifetime.c - the lifetime-routing tables (src/lifetime.c): sites are
 * learned and unlearned, the fixed tables survive more sites and samples
 * than they hold (hash collisions), and threads share them safely. Sites are
 * synthetic return addresses, through lt_alloc (the countdown, as malloc). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "heap.h"
#include "start.h"
#include "lifetime.h"
#include "sample.h"
#include "options.h"

#define CLS 3 /* 64 B blocks */
#define FAST_ENV()                                                                       \
  do {                                                                                   \
    setenv("POOLMALLOC_LIFETIME", "1", 0); /* 2 in unit_lifetime_pages */                \
    setenv("POOLMALLOC_PROFILE_RATE", "1024", 1);                                        \
    setenv("POOLMALLOC_LIFETIME_THRESHOLD", "65536", 1);                                 \
  } while (0)

/* what malloc's fast path (PM_MALLOC_BODY) does with a known call site: no
 * free block on the current page is pm_malloc_slow's; else the byte
 * countdown, whose slow branch is pm_malloc_counted (its lean branch for a
 * diverted class, else the tick); else a pool block. Calling
 * pm_malloc_tick for every request would take a sample each time the class
 * is not diverted and run the clock too fast. */
static void *lt_alloc(pm_heap *h, size_t size, unsigned cls, uintptr_t site) {
  if (h->pages[cls]->free == NULL) return pm_malloc_slow(h, size, site, cls);
  if ((h->countdown[cls] -= (int64_t)size) < 0)
    return pm_malloc_counted(h, size, site, cls);
  return pm_malloc_pool(h, size, cls);
}

static pm_heap *heap(void) {
  pm_free(pm_malloc(1)); /* starts the process and the thread's heap */
  return pm_heap_get();
}

/* `n` allocations from `site`, freed after `life` further allocations (or
 * kept when life is 0); other allocations come from a short-lived site */
static void drive(pm_heap *h, uintptr_t site, int n, int life, void **kept) {
  void *ring[64] = {0};
  for (int i = 0; i < n; i++) {
    void *p = lt_alloc(h, 64, CLS, site);
    cr_assert_not_null(p);
    memset(p, 0xab, 64);
    if (life == 0) {
      kept[i] = p;
    } else {
      int slot = i % 64;
      pm_free(ring[slot]);
      ring[slot] = p;
    }
    for (int k = 0; k < (life ? life / 64 : 40); k++) /* the clock runs */
      pm_free(lt_alloc(h, 64, CLS, 0x5000));
  }
  for (int i = 0; i < 64; i++)
    pm_free(ring[i]);
}

/* 4000 blocks of CLS from `site`, kept in `kept`: a long-lived site,
 * learned and marked, its class diverted */
static void learn_kept(pm_heap *h, uintptr_t site, void **kept) {
  drive(h, site, 4000, 0, kept);
  cr_assert(relaxed_load(&pm_lt_diverted) >> CLS & 1, "the class is diverted for %#lx",
            (unsigned long)site);
}

static void free_all(void **v, int n) {
  for (int i = 0; i < n; i++)
    pm_free(v[i]);
}

Test(lifetime, a_site_is_learned_routed_and_unlearned) {
  FAST_ENV();
  pm_heap *h = heap();
  static void *kept[4000];
  drive(h, 0x1000, 4000, 0, kept); /* 0x1000: never freed */
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8);
  cr_assert_geq(n, 1);
  cr_assert_eq(top[0].site, 0x1000);
  cr_assert(top[0].marked, "the long-lived site is marked");
  cr_assert_gt(top[0].routed_blocks, 100, "and routed: %lu",
               (unsigned long)top[0].routed_blocks);
  cr_assert(relaxed_load(&pm_lt_diverted) >> CLS & 1, "its class is diverted");
  cr_assert_eq(relaxed_load(&pm_lt_diverted) & ((1ull << CLS) - 1), 0,
               "a site of one size diverts no smaller class");
  for (size_t i = 0; i < n; i++)
    cr_assert(top[i].site != 0x5000 || !top[i].marked, "the short-lived site is not");
  free_all(kept, 4000);
  /* the same site turns short-lived: unmarked, the class undiverted */
  drive(h, 0x1000, 20000, 64, NULL);
  n = pm_lt_top_sites(top, 8);
  for (size_t i = 0; i < n; i++)
    if (top[i].site == 0x1000)
      cr_assert(!top[i].marked, "unmarked once short-lived: %lu long / %lu short samples",
                (unsigned long)top[i].long_samples, (unsigned long)top[i].short_samples);
  cr_assert_eq(relaxed_load(&pm_lt_diverted) >> CLS & 1, 0,
               "class back on the fast path");
}

/* Each heap caches its routing decisions by site (pm_lt_route): a site
 * asked about while unmarked (its class diverted for another site) is
 * routed once it is marked itself. Fails if marking leaves the cache as it
 * was: the second site's cached "not routed" would stay. */
Test(lifetime, a_cached_decision_follows_the_marking) {
  FAST_ENV();
  pm_heap *h = heap();
  static void *kept_a[4000], *kept_b[4000];
  learn_kept(h, 0x1000, kept_a);
  for (int i = 0; i < 100; i++) /* B is asked about: not marked yet */
    pm_free(lt_alloc(h, 64, CLS, 0x2000));
  drive(h, 0x2000, 4000, 0, kept_b);
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8), b = n;
  for (size_t i = 0; i < n; i++)
    if (top[i].site == 0x2000) b = i;
  cr_assert_lt(b, n, "B has samples");
  cr_assert(top[b].marked, "B is marked");
  cr_assert_gt(top[b].routed_blocks, 100, "and routed: %lu",
               (unsigned long)top[b].routed_blocks);
}

/* Every request of a diverted class leaves the fast path; the unrouted ones
 * (most) take pm_malloc_counted's lean branch. They must count as the tick
 * counts them: the sampling distance (samples keep coming, at the rate: a
 * 64 B request is sampled with probability 1 - exp(-64/1024), 6.1%) and
 * the class's requested bytes (exact). Fails if the lean branch skips
 * either. */
Test(lifetime, a_diverted_class_still_samples_and_counts) {
  FAST_ENV();
  pm_heap *h = heap();
  static void *kept[4000];
  learn_kept(h, 0x1000, kept);
  for (int i = 0; i < 200; i++) /* C's decision ("not routed") is cached */
    pm_free(lt_alloc(h, 64, CLS, 0x3000));
  uint64_t samples = h->stats.samples,
           req = h->req_bytes[CLS] - (uint64_t)h->countdown[CLS];
  /* 640 KB: less than the two long ages (~1.2 MB) after which the idle
   * site would rest and its class leave the slow branch */
  const int n = 10000;
  for (int i = 0; i < n; i++)
    pm_free(lt_alloc(h, 64, CLS, 0x3000));
  uint64_t taken = h->stats.samples - samples;
  uint64_t counted = h->req_bytes[CLS] - (uint64_t)h->countdown[CLS] - req;
  cr_assert(taken >= 450 && taken <= 800, "about 606 samples of C: %lu",
            (unsigned long)taken);
  cr_assert_eq(counted, (uint64_t)n * 64, "requested bytes exact: %lu of %lu",
               (unsigned long)counted, (unsigned long)n * 64);
  cr_assert(relaxed_load(&pm_lt_diverted) >> CLS & 1, "still diverted");
  free_all(kept, 4000);
}

/* A marked site that stops allocating rests: after REST_AGES long ages of
 * the clock with no sample of it, its class is undiverted (every request of
 * the class went through pm_malloc_counted for nothing), and it stays
 * marked; its next sample diverts the class again. Fails if a rest never
 * comes (the diversion is kept forever) or if the site's return is missed. */
Test(lifetime, an_idle_marked_site_rests_and_comes_back) {
  FAST_ENV();
  pm_heap *h = heap();
  static void *kept[4000], *later[400];
  learn_kept(h, 0x1000, kept);
  /* 6.4 MB from another site: about ten long ages (twice the ~300 KB peak;
   * the site rests after two) */
  for (int i = 0; i < 100000; i++)
    pm_free(lt_alloc(h, 64, CLS, 0x3000));
  cr_assert_eq(relaxed_load(&pm_lt_diverted) >> CLS & 1, 0,
               "the idle site's class rests");
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8), a = n;
  for (size_t i = 0; i < n; i++)
    if (top[i].site == 0x1000) a = i;
  cr_assert_lt(a, n);
  cr_assert(top[a].marked && top[a].resting, "still marked, resting");
  uint64_t samples, sites, marked, rests;
  pm_lt_totals(&samples, &sites, &marked, &rests);
  cr_assert_geq(rests, 1);
  /* it allocates again: its first sample (6.1% of its 64 B requests) diverts
   * the class again, and its blocks are routed from then on */
  uint64_t routed = top[a].routed_blocks;
  for (int i = 0; i < 400; i++)
    later[i] = lt_alloc(h, 64, CLS, 0x1000);
  cr_assert(relaxed_load(&pm_lt_diverted) >> CLS & 1, "diverted again");
  n = pm_lt_top_sites(top, 8);
  for (size_t i = 0; i < n; i++)
    if (top[i].site == 0x1000)
      cr_assert(!top[i].resting && top[i].routed_blocks > routed + 100,
                "routed again: %lu more", (unsigned long)(top[i].routed_blocks - routed));
  free_all(later, 400);
  free_all(kept, 4000);
}

/* Routing alone (no report's profile) judges samples by site: the stack
 * tables, which only the profile reads, stay untouched (20 KiB of a small
 * process's resident memory when they were filled with one-frame stacks). */
Test(lifetime, routing_alone_keeps_no_stacks) {
  FAST_ENV();
  pm_heap *h = heap();
  static void *kept[4000];
  learn_kept(h, 0x1000, kept);
  cr_assert_gt(h->stats.samples, 100, "samples were taken: %lu",
               (unsigned long)h->stats.samples);
  pm_stack_info top[4];
  cr_assert_eq(pm_sample_top(top, 4, 2), 0, "no stack kept");
  free_all(kept, 4000);
}

/* The verdict is relative to the heap: a block is long-lived once it has
 * outlived two turnovers of the live heap (and LIFETIME_THRESHOLD). A site
 * whose blocks live 8 times the threshold, while the heap holds 2.5 MB, is
 * short-lived (the fixed threshold alone marked it and routed its blocks). */
Test(lifetime, the_verdict_is_relative_to_the_live_heap) {
  FAST_ENV();
  pm_heap *h = heap();
  enum { KEEP = 40000 };
  void **kept = malloc(KEEP * sizeof *kept);
  drive(h, 0x3000, KEEP, 0, kept); /* 2.5 MB kept to the end */
  cr_assert_gt(pm_sample_live_bytes(), 1000000, "live estimate %lu",
               (unsigned long)pm_sample_live_bytes());
  /* each block of 0x4000 lives ~8192 allocations of 64 B: 512 KiB, 8 times
   * the threshold, a fifth of the heap's turnover */
  drive(h, 0x4000, 3000, 8192, NULL);
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8);
  bool kept_marked = false;
  for (size_t i = 0; i < n; i++) {
    cr_assert(
        top[i].site != 0x4000 || (!top[i].marked && top[i].routed_blocks == 0),
        "the site living a fifth of a turnover is not learned: %lu long / %lu short "
        "samples, %lu routed",
        (unsigned long)top[i].long_samples, (unsigned long)top[i].short_samples,
        (unsigned long)top[i].routed_blocks);
    kept_marked |= top[i].site == 0x3000 && top[i].marked;
  }
  cr_assert(kept_marked, "the site whose blocks are kept is learned");
  for (int i = 0; i < KEEP; i++)
    pm_free(kept[i]);
  free(kept);
}

/* bench_mixed's shape: one call site serves phases of blocks that are all
 * freed, in a scattered order, at the end of their phase (phases of varying
 * size). As the heap shrinks in each sweep, the blocks freed last are old
 * next to what is left; judged against the live heap now, the site was
 * marked and most of its requests routed. Against the peak it is not. */
Test(lifetime, a_shrinking_heap_does_not_make_its_blocks_long_lived) {
  FAST_ENV();
  pm_heap *h = heap();
  enum { MAXN = 60000, STRIDE = 7919 };
  void **blocks = malloc(MAXN * sizeof *blocks);
  for (int ph = 0; ph < 12; ph++) {
    int n = 20000 + (ph * 17 % 5) * 10000;
    for (int i = 0; i < n; i++) {
      blocks[i] = lt_alloc(h, 64, CLS, 0x6000);
      cr_assert_not_null(blocks[i]);
    }
    for (int k = 0; k < n; k++)
      pm_free(blocks[(size_t)k * STRIDE % (size_t)n]);
  }
  free(blocks);
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8);
  for (size_t i = 0; i < n; i++)
    cr_assert(top[i].site != 0x6000 || (!top[i].marked && top[i].routed_blocks == 0),
              "a site whose blocks die with their phase is not learned: %lu long / %lu "
              "short samples, %lu routed",
              (unsigned long)top[i].long_samples, (unsigned long)top[i].short_samples,
              (unsigned long)top[i].routed_blocks);
}

/* Issue 14's program in small: phases of blocks from a short-lived site,
 * all freed at the phase's end, and after every 100 of them one block from
 * a site that keeps them. The kept site is learned from the first sweep of
 * frees: its samples outlived the cohort of samples taken around them. The
 * age alone (twice the peak of the live heap) learned it after more than
 * two phases of allocation; now it is learned within the second phase, and
 * not before the first sweep (the evidence is the sweep). */
Test(lifetime, a_site_is_learned_from_the_first_sweep) {
  FAST_ENV();
  pm_heap *h = heap();
  enum { PER_PHASE = 20000, EVERY = 100, PHASES = 4 };
  const uint64_t phase_bytes = (uint64_t)PER_PHASE * 64 * (EVERY + 1) / EVERY;
  void **blocks = malloc(PER_PHASE * sizeof *blocks);
  static void *kept[PHASES * PER_PHASE / EVERY];
  int nkept = 0;
  uint64_t start = pm_sample_clock();
  for (int ph = 0; ph < PHASES; ph++) {
    for (int i = 0; i < PER_PHASE; i++) {
      blocks[i] = lt_alloc(h, 64, CLS, 0x7000);
      cr_assert_not_null(blocks[i]);
      if (i % EVERY == EVERY - 1) kept[nkept++] = lt_alloc(h, 64, CLS, 0x7100);
    }
    for (int i = 0; i < PER_PHASE; i++)
      pm_free(blocks[i]);
  }
  free(blocks);
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8);
  bool learned = false;
  for (size_t i = 0; i < n; i++) {
    cr_assert(top[i].site != 0x7000 || !top[i].marked,
              "the short-lived site is not marked");
    if (top[i].site != 0x7100) continue;
    learned = top[i].marked;
    double phases = (double)(top[i].marked_after - start) / (double)phase_bytes;
    cr_assert(top[i].marked_after > start && phases > 1.0 && phases < 1.8,
              "learned after %.2f phases of allocation (%lu long / %lu short samples)",
              phases, (unsigned long)top[i].long_samples,
              (unsigned long)top[i].short_samples);
    cr_assert_gt(top[i].routed_blocks, PER_PHASE / EVERY, "routed %lu",
                 (unsigned long)top[i].routed_blocks);
  }
  cr_assert(learned, "the kept site is learned");
  for (int i = 0; i < nkept; i++)
    pm_free(kept[i]);
}

/* A site seen with several sizes diverts down to a quarter of its smallest
 * sampled size: a request is sampled in proportion to its size, so the
 * smallest ones of a varied site are the least likely to show in samples
 * (issue 14's site B, 16-512 B, was seen from 64 B up and its smaller
 * blocks were never routed). A site of one size diverts its class only. */
Test(lifetime, a_varied_site_diverts_below_its_smallest_sample) {
  FAST_ENV();
  pm_heap *h = heap();
  enum { KEEP = 4000 };
  static void *kept[KEEP];
  for (int i = 0; i < KEEP; i++) {
    size_t size = i % 2 ? 128 : 512; /* classes 7 and 15 */
    kept[i] = lt_alloc(h, size, pm_class_of(size), 0x9000);
    cr_assert_not_null(kept[i]);
    for (int k = 0; k < 40; k++)
      pm_free(lt_alloc(h, 64, CLS, 0x5000));
  }
  pm_lt_site_info top[8];
  size_t n = pm_lt_top_sites(top, 8);
  bool marked = false;
  for (size_t i = 0; i < n; i++)
    marked |= top[i].site == 0x9000 && top[i].marked;
  cr_assert(marked, "the varied site is learned");
  uint64_t d = relaxed_load(&pm_lt_diverted);
  cr_assert(d >> pm_class_of(32) & 1, "32 B (a quarter of 128 B) is diverted: %#lx",
            (unsigned long)d);
  cr_assert_eq(d >> pm_class_of(16) & 1, 0, "16 B is not: %#lx", (unsigned long)d);
  for (int i = 0; i < KEEP; i++)
    pm_free(kept[i]);
}

/* realloc through one call site: the site is learned from realloc(NULL, n)
 * like malloc's, but a realloc that moves a block never routes the new one
 * (a growing block leaves its old place at each move; a routed one went on
 * growing inside jemalloc) */
static __attribute__((noinline, noclone)) void *grow(void *p, size_t n) {
  void *q = pm_realloc(p, n);
  __asm__ volatile("" : "+r"(q)); /* not a tail call: the site is in grow */
  return q;
}

/* grow called from one place: a site called from several callers is a
 * wrapper, judged per caller (wrapper_sites_are_judged_per_caller) */
static __attribute__((noinline, noclone)) void *grow1(void *p, size_t n) {
  void *q = grow(p, n);
  __asm__ volatile("" : "+r"(q));
  return q;
}

static pm_lt_site_info site_in(uintptr_t lo, uintptr_t hi) {
  pm_lt_site_info top[8], none = {0};
  size_t n = pm_lt_top_sites(top, 8);
  for (size_t i = 0; i < n; i++)
    if (top[i].site >= lo && top[i].site < hi) return top[i];
  return none;
}

Test(lifetime, a_realloc_that_moves_is_not_routed) {
  FAST_ENV();
  pm_heap *h = heap();
  enum { KEEP = 4000 };
  static void *kept[KEEP];
  uintptr_t lo = (uintptr_t)grow, hi = lo + 256; /* grow's return address */
  for (int i = 0; i < KEEP; i++) {
    kept[i] = grow1(NULL, i % 2 ? 64 : 256); /* the site (grow's call) spans 64-256 B */
    cr_assert_not_null(kept[i]);
    for (int k = 0; k < 40; k++) /* the clock runs */
      pm_free(lt_alloc(h, 64, CLS, 0x5000));
  }
  cr_assert(site_in(lo, hi).marked, "grow's site is learned");
  /* new blocks from the site are routed; the blocks its reallocs move are
   * not (64 B to 200 B: a move, within the site's diverted classes) */
  uint64_t by_malloc = 0, by_realloc = 0;
  for (int i = 0; i < 200; i++) {
    uint64_t before = site_in(lo, hi).routed_blocks;
    void *q = grow1(NULL, 64);
    uint64_t mid = site_in(lo, hi).routed_blocks;
    void *r = grow1(q, 200);
    cr_assert_not_null(r);
    by_malloc += mid - before;
    by_realloc += site_in(lo, hi).routed_blocks - mid;
    pm_free(r);
  }
  cr_assert_gt(by_malloc, 10, "new blocks routed: %lu of 200", (unsigned long)by_malloc);
  cr_assert_eq(by_realloc, 0, "moved blocks routed: %lu of 200",
               (unsigned long)by_realloc);
  for (int i = 0; i < KEEP; i++)
    pm_free(kept[i]);
}

/* An allocation wrapper: one call site for two callers, one keeping its
 * blocks, one freeing them at once. Its samples are mixed (1 long-lived in
 * 41), so as one site it is never marked; judged per caller, the keeper is
 * marked and routed and the other is not. Frames are real (pm_malloc's
 * return address, the unwinder's caller), not synthetic sites. */
static __attribute__((noinline, noclone)) void *wrapper(size_t n) {
  void *p = pm_malloc(n);
  __asm__ volatile("" : "+r"(p)); /* not a tail call: the site is here */
  return p;
}

static __attribute__((noinline, noclone)) void *keeper(void) {
  void *p = wrapper(64);
  __asm__ volatile("" : "+r"(p));
  return p;
}

static __attribute__((noinline, noclone)) void *churner(void) {
  void *p = wrapper(64);
  __asm__ volatile("" : "+r"(p));
  return p;
}

/* the entry of the wrapper's caller in [lo, lo + 256), or of the wrapper
 * itself (lo 0) */
static pm_lt_site_info caller_in(uintptr_t lo) {
  pm_lt_site_info top[16], none = {0};
  size_t n = pm_lt_top_sites(top, 16);
  uintptr_t w = (uintptr_t)wrapper;
  for (size_t i = 0; i < n; i++)
    if (top[i].site >= w && top[i].site < w + 256 &&
        (lo == 0 ? top[i].caller == 0 : top[i].caller >= lo && top[i].caller < lo + 256))
      return top[i];
  return none;
}

Test(lifetime, wrapper_sites_are_judged_per_caller) {
  FAST_ENV();
  heap();
  enum { KEEP = 4000 };
  static void *kept[KEEP];
  for (int i = 0; i < KEEP; i++) {
    kept[i] = keeper();
    cr_assert_not_null(kept[i]);
    for (int k = 0; k < 40; k++)
      pm_free(churner());
  }
  pm_lt_site_info w = caller_in(0), keep = caller_in((uintptr_t)keeper),
                  churn = caller_in((uintptr_t)churner);
  cr_assert(w.wrapper && !w.marked, "the wrapper's own site is not judged");
  cr_assert(keep.marked, "the keeper is learned: %lu long / %lu short samples",
            (unsigned long)keep.long_samples, (unsigned long)keep.short_samples);
  cr_assert(!churn.marked && churn.routed_blocks == 0, "the churner is not");
  /* the keeper goes on keeping its blocks: freed at once, they made it
   * short-lived, and it was unmarked within the 200 in about one run in 30
   * (one in 190 with the slower marking window) */
  uint64_t before = keep.routed_blocks;
  static void *more[200];
  for (int i = 0; i < 200; i++) {
    more[i] = keeper();
    cr_assert_not_null(more[i]);
    memset(more[i], 1, 64);
    pm_free(churner());
  }
  for (int i = 0; i < 200; i++)
    pm_free(more[i]);
  keep = caller_in((uintptr_t)keeper);
  churn = caller_in((uintptr_t)churner);
  cr_assert_gt(keep.routed_blocks - before, 150,
               "the keeper's blocks are routed: %lu of 200",
               (unsigned long)(keep.routed_blocks - before));
  cr_assert_eq(churn.routed_blocks, 0, "the churner's are not");
  cr_assert_eq(caller_in(0).routed_blocks, 0);
  for (int i = 0; i < KEEP; i++)
    pm_free(kept[i]);
}

Test(lifetime, more_sites_than_slots) {
  FAST_ENV();
  pm_heap *h = heap();
  /* 3 allocations from each of 9000 sites, all freed: more sites than the
   * 4096-slot table and colliding hashes; every request is served */
  for (uintptr_t s = 1; s <= 9000; s++)
    for (int k = 0; k < 3; k++) {
      void *p = pm_malloc_tick(h, 64, CLS, s << 12) /* every call a sample */;
      cr_assert_not_null(p);
      pm_free(p);
    }
  uint64_t samples, sites, marked, rests;
  pm_lt_totals(&samples, &sites, &marked, &rests);
  cr_assert_gt(samples, 1000);
  cr_assert_leq(sites, 4096, "sites %lu", (unsigned long)sites);
  cr_assert_eq(pm_sample_live, 0, "every sample freed left the table");
}

Test(lifetime, more_live_samples_than_slots) {
  FAST_ENV();
  pm_heap *h = heap();
  /* 40,000 live blocks at rate 16: ~39,000 samples for a 16,384-slot table */
  enum { N = 40000 };
  void **v = malloc(N * sizeof *v);
  for (int i = 0; i < N; i++) {
    v[i] = lt_alloc(h, 64, CLS, 0x2000 + (uintptr_t)(i % 7) * 0x100);
    cr_assert_not_null(v[i]);
    *(int *)v[i] = i;
  }
  for (int i = 0; i < N; i++) {
    cr_assert_eq(*(int *)v[i], i);
    pm_free(v[i]);
  }
  free(v);
  cr_assert_eq(pm_sample_live, 0);
}

static void *worker(void *arg) {
  uintptr_t base = (uintptr_t)arg;
  pm_heap *h = heap();
  void *keep[512];
  for (int r = 0; r < 40; r++) {
    for (int i = 0; i < 512; i++) {
      keep[i] =
          lt_alloc(h, 16 + (size_t)(i % 5) * 48, pm_class_of(16 + (size_t)(i % 5) * 48),
                   base + (uintptr_t)(i % 13) * 64);
      memset(keep[i], r, 16);
    }
    for (int i = 0; i < 512; i++) {
      cr_assert_eq(((unsigned char *)keep[i])[15], (unsigned char)r);
      pm_free(keep[i]);
    }
  }
  return NULL;
}

static _Atomic int scanning;
static void no_verdict(pm_sample_info *s, uint8_t *flag, uint64_t now) {
  (void)s, (void)flag, (void)now;
}
static void *scanner(void *arg) {
  (void)arg;
  while (atomic_load(&scanning))
    pm_sample_scan(64, no_verdict);
  return NULL;
}

/* a scan in one thread never hides a sample from a free in another: every
 * sample freed leaves the table (a scan that claimed the entry it looked
 * at made such a free miss it) */
Test(lifetime, a_scan_never_hides_a_sample_from_its_free) {
  FAST_ENV();
  pm_heap *h = heap();
  atomic_store(&scanning, 1);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, scanner, NULL), 0);
  for (int i = 0; i < 300000; i++) {
    void *p = pm_malloc_tick(h, 64, CLS, 0x7000) /* every call a sample */;
    cr_assert_not_null(p);
    pm_free(p);
  }
  atomic_store(&scanning, 0);
  pthread_join(t, NULL);
  cr_assert_eq(pm_sample_live, 0, "%u samples left behind", (unsigned)pm_sample_live);
}

Test(lifetime, threads_share_the_tables) {
  FAST_ENV();
  /* the profile's stack tables (routing alone keeps no stacks) */
  setenv("POOLMALLOC_STATS", "json", 1);
  setenv("POOLMALLOC_STATS_FILE", "/dev/null", 1);
  heap();
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    cr_assert_eq(
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)((i % 2 + 1) << 20)), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  cr_assert_eq(pm_sample_live, 0);
  /* two threads sampled each site at once: each one stack, never two */
  static pm_stack_info top[PM_STACK_SLOTS];
  size_t n = pm_sample_top(top, PM_STACK_SLOTS, 2);
  cr_assert_geq(n, 26, "the workers' 26 sites have stacks: %zu", n);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      cr_assert(top[i].depth != top[j].depth ||
                    memcmp(top[i].frames, top[j].frames,
                           top[i].depth * sizeof *top[i].frames) != 0,
                "stack %#lx stored twice", (unsigned long)top[i].frames[0]);
}
